"""SIGINT and SIGTERM handled alike: both become :class:`Interrupted` in the main thread.

A batch scheduler stops a job with SIGTERM, a person with Ctrl+C (SIGINT). Python turns only
the second into an exception; SIGTERM would kill the process where it stands, skipping every
``finally`` that removes a partial output or marks an MLflow run FAILED. Under
:func:`handling_signals` both raise :class:`Interrupted` (a ``KeyboardInterrupt``, so no
``except Exception`` swallows it) and the job cleans up on its way out. A few steps must not be
cut in half (registering a model version and tagging its run): :func:`deferred` holds a signal
back until the block is done, then raises it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The process received SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


_held: list[int] | None = None  # signals held back by deferred(), None outside it


def _raise(signum: int, frame: FrameType | None) -> None:
    global _held
    if _held is not None:
        _held.append(signum)
        return
    raise Interrupted(signum)


@contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` inside the block (main thread only: Python
    delivers signals there; elsewhere the block runs with the handlers it has)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    for sig in HANDLED:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while the block runs, then raise the first one that came.

    For steps that must happen whole or not at all. Only our own handler defers: outside
    :func:`handling_signals` a SIGINT still raises ``KeyboardInterrupt`` where it lands."""
    global _held
    if _held is not None:  # nested: the outer block raises
        yield
        return
    _held = []
    try:
        yield
    finally:
        held, _held = _held, None
    if held:
        raise Interrupted(held[0])
