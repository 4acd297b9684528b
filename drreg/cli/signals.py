"""SIGINT and SIGTERM stop a command alike, as Ctrl-C does; the exit status is then 130 or 143."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

#: Signals that stop a command as Ctrl-C does; its exit status is then 128 + the signal's number, as a shell reports
#: a process killed by it (130 for SIGINT, 143 for SIGTERM).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """SIGTERM (what schedulers and ``timeout`` send) stops a command exactly as Ctrl-C does.

    The first SIGINT or SIGTERM raises ``KeyboardInterrupt`` in the main thread, which Lightning turns into its
    graceful shutdown (``on_exception`` of the callbacks: ``poses.json`` with status ``"interrupted"``, the
    interrupt checkpoint); later ones are ignored, so that they cannot cut that shutdown short. Signals the process
    ignores (e.g. SIGINT of a background job) stay ignored. Yields the list of received signals (at most one).
    """
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield received
        return
    previous = {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, stop)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be restored
                signal.signal(signum, handler)


def exit_stopped(received: list[int]) -> NoReturn:
    """Print which signal stopped the command and exit with 128 + its number (SIGINT when none was received)."""
    signum = received[0] if received else signal.SIGINT
    print(f"drreg: stopped by {signal.Signals(signum).name}", file=sys.stderr)
    sys.exit(128 + signum)
