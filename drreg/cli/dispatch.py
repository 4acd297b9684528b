"""The ``drreg`` command itself: :func:`main` reads the command's name and hands the rest to that command's CLI."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

import jsonargparse

from drreg.cli.base import COMMANDS, REGRESSION_COMMANDS
from drreg.cli.errors import debug_enabled, is_user_error, usage_error
from drreg.cli.register import RegistrationCLI
from drreg.cli.regression import PoseRegressionCLI
from drreg.cli.render import render_example
from drreg.cli.signals import exit_stopped, stop_on_signals
from drreg.cli.simulate import simulate_command

_DESCRIPTION = "drreg: differentiable DRR rendering and 2D/3D X-ray to CT registration."
_EPILOG = """\
A run refuses to write into a folder that holds a previous run's results (--overwrite true lets it).
Ctrl-C and SIGTERM stop a run gracefully (exit status 130 and 143). Errors in the arguments or files print one
line (exit status 2); DRREG_DEBUG=1 shows their traceback.
"""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``drreg`` command: ``drreg <command> [options]``.

    Dispatch: the first argument names the command (a jsonargparse parser with one subcommand per entry of
    :data:`COMMANDS` reads it, and prints ``drreg --help``); that command's own parser reads the rest, given to it as
    ``args=`` (``sys.argv`` is read, never assigned): ``register`` is :class:`RegistrationCLI`,
    ``fit | validate | test | predict`` are Lightning's subcommands of :class:`PoseRegressionCLI`, ``render`` is
    jsonargparse's command line of :func:`render_example` (``jsonargparse.auto_cli``), and ``simulate`` is
    jsonargparse's parser of :func:`~drreg.cli.simulate.simulate` (:func:`simulate_command`).

    A mistake in the arguments or files prints ``drreg: error: <message>`` and exits with status 2 (``DRREG_DEBUG=1``
    shows the traceback too); other exceptions keep their traceback. Ctrl-C and SIGTERM stop a run gracefully (the
    results so far and an interrupt checkpoint are written) and exit with status 130 and 143.

    Args:
        argv: the arguments after ``drreg`` (``["register", "--config", "recipes/register.yaml"]``); ``None`` reads
            ``sys.argv[1:]``.
    """
    # Lightning 2.6 calls a pytree API that torch 2.13 deprecates: noise on every run, nothing for users to do.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # main gives each command's CLI the arguments of the command line as args=: not the mix of args= and other
    # command-line arguments that LightningCLI warns of.
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within Python")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command(argv)
    if command is None:
        return
    with stop_on_signals() as received:
        try:
            _run(command, argv[1:])
        except KeyboardInterrupt:  # stopped outside a Trainer's run, e.g. while the CT was being read
            exit_stopped(received)
        except SystemExit:
            if received:  # Lightning's graceful shutdown after the signal exits with status 1
                exit_stopped(received)
            raise
        except Exception as error:
            if debug_enabled() or not is_user_error(error):
                raise
            usage_error(str(error))


class _HelpFormatter(jsonargparse.DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, with the epilog's lines kept as written."""


def _command_parser() -> jsonargparse.ArgumentParser:
    """The parser of ``drreg <command>``: one subcommand per command, whose own CLI parses its options."""
    parser = jsonargparse.ArgumentParser(
        prog="drreg",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
        exit_on_error=False,
    )
    commands = parser.add_subcommands(
        required=True,
        dest="command",
        title="commands",
        metavar="<command>",
        description="drreg <command> --help lists the options of a command.",
    )
    for name, text in COMMANDS.items():
        commands.add_subcommand(name, jsonargparse.ArgumentParser(prog=f"drreg {name}", add_help=False), help=text)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command that ``argv`` starts with, or ``None`` once ``drreg --help`` (or a bare ``drreg``) printed the
    commands. A first argument that is no command prints a one-line error and exits with status 2."""
    parser = _command_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return None
    try:  # only the command's name: its options are its own parser's to read
        return str(parser.parse_args(argv[:1]).command)
    except argparse.ArgumentError:
        usage_error(f"unknown command {argv[0]!r}; expected one of: {', '.join(COMMANDS)} (drreg --help lists them)")


def _run(command: str, args: list[str]) -> None:
    """Run ``command`` with its own arguments ``args``, given to its parser as ``args=``."""
    if command == "register":
        RegistrationCLI(args).run()
    elif command in REGRESSION_COMMANDS:
        PoseRegressionCLI([command, *args])
    elif command == "simulate":
        simulate_command(args)
    else:
        jsonargparse.auto_cli(render_example, args=args, prog="drreg render", description=COMMANDS["render"])
