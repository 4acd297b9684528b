"""Mistakes in a command's arguments or files print one line, ``drreg: error: <message>`` (exit status 2);
``DRREG_DEBUG=1`` shows their traceback too."""

from __future__ import annotations

import linecache
import os
import sys
from pathlib import Path
from typing import NoReturn

import jsonargparse
from lightning.fabric.utilities.exceptions import MisconfigurationException

#: Exit status of a mistake in the command's arguments or files (argparse's).
_USAGE_ERROR = 2
#: Where a ``raise`` statement raises errors meant for the user: drreg's checks and jsonargparse's (the config parser's,
#: about the values given, e.g. a class in the config whose constructor refused its arguments). ``parents[1]`` of
#: ``drreg/cli/errors.py`` is ``drreg/``: the whole package, not only its ``cli`` folder.
_USER_ERROR_SOURCES = (Path(__file__).resolve().parents[1], Path(jsonargparse.__file__).resolve().parent)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` tells the user what is wrong with the command's arguments or files.

    That is Lightning's ``MisconfigurationException``, or a ``ValueError``, ``TypeError``, ``OSError`` or
    ``FloatingPointError`` (a registration that diverged: lower the learning rates) raised by a
    ``raise`` statement of drreg (which checks its inputs so, with messages meant to be read alone) or of jsonargparse
    (the values in the config). Anything else, e.g. a ``TypeError`` raised inside an expression, is a bug and keeps
    its traceback.
    """
    if isinstance(error, MisconfigurationException):
        return True
    traceback = error.__traceback__
    if not isinstance(error, (ValueError, TypeError, OSError, FloatingPointError)) or traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    filename = traceback.tb_frame.f_code.co_filename
    if not any(Path(filename).resolve().is_relative_to(source) for source in _USER_ERROR_SOURCES):
        return False
    return linecache.getline(filename, traceback.tb_lineno).lstrip().startswith("raise ")


def debug_enabled() -> bool:
    """Whether ``DRREG_DEBUG`` asks for tracebacks (set, and not ``0``, ``false`` or ``no``)."""
    return os.environ.get("DRREG_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def usage_error(message: str) -> NoReturn:
    """Print ``drreg: error: <message>`` to stderr and exit with status 2, as argparse does."""
    print(f"drreg: error: {message}", file=sys.stderr)
    sys.exit(_USAGE_ERROR)
