"""Progress of long work, through the ``logging`` module, and how long each kind of step took.

A distillation spends minutes to hours in a few steps (teacher training, teacher scoring,
student fitting); a user must see which one is running, and a reviewer how much each cost:
training time is part of a model's energy bill, beside its scoring cost.

Everything that is not a command's own result goes to the ``stillroom`` logger (library
convention: a caller decides whether and where it is shown; the package installs only a
``NullHandler``). The ``stillroom`` command shows it on stderr (:func:`show_on_stderr`).
:data:`console` stays the object plugins were given: its ``log()`` is the logger's ``info``,
and its live displays (a step's spinner, a progress bar) appear only when the command line
turned them on for a terminal (:func:`live_display`); a library call draws nothing.

Each step is announced to the logger when it starts and when it ends, with
``extra={"stillroom_step": title, "stillroom_phase": "start" | "end"}``: what a caller (or a
fault-injection test) watches to know where a run is.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from rich.console import Console

logger = logging.getLogger("stillroom")


class _LoggingConsole(Console):
    """A rich console for live displays whose ``log()`` goes to the ``stillroom`` logger.

    Quiet (draws nothing) until :func:`live_display` turns it on; never interprets markup, so
    brackets in a message survive (``pip install 'stillroom[compiled]'``)."""

    def log(self, *objects: Any, **_: Any) -> None:  # type: ignore[override]
        logger.info(" ".join(str(o) for o in objects))


console = _LoggingConsole(stderr=True, log_path=False, markup=False, highlight=False, quiet=True)
_timings: ContextVar[dict[str, float] | None] = ContextVar("stillroom_step_timings", default=None)
_steps: ContextVar[tuple[str, ...]] = ContextVar("stillroom_steps", default=())


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (a test runner swaps it per command), not the one
    that was current when the handler was made."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def live_display(enabled: bool) -> None:
    """Show spinners and progress bars on stderr (the CLI, on a terminal) or not (the default)."""
    console.quiet = not enabled


def show_on_stderr(level: int = logging.INFO) -> logging.Handler:
    """Show the ``stillroom`` logger on stderr from ``level`` on; returns the handler (to remove).

    On a terminal, rich's handler (time column, no markup interpretation); otherwise one plain
    line per message, for a batch job's log file."""
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        logs = Console(stderr=True, markup=False, highlight=False)
        handler = RichHandler(console=logs, markup=False, show_path=False, show_level=level < logging.INFO)
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def own_stderr() -> None:
    """The ``stillroom`` command's process: its own handler shows every line, so records are not
    also passed up to the root logger, which a library may configure on import
    (mlflow.pytorch's Lightning autolog calls ``logging.basicConfig``): the demo printed every
    medical line twice. Only the command's entry point calls this; inside a caller's process
    (the Python API, a test runner) the caller's logging keeps receiving stillroom's records."""
    logger.propagate = False


def current_step() -> str | None:
    """The title of the innermost step running now (what a failure tag names), if any."""
    running = _steps.get()
    return running[-1] if running else None


@contextmanager
def step(title: str) -> Iterator[None]:
    """Announce a step when it starts and how long it took when done.

    Inside :func:`timed`, the seconds are added up per kind of step: the words before the
    colon of the title (``"teacher: scoring 1,000 rows"`` counts as ``teacher``).
    """
    start = time.perf_counter()
    logger.debug(f"{title} ...", extra={"stillroom_step": title, "stillroom_phase": "start"})
    token = _steps.set((*_steps.get(), title))
    try:
        with console.status(f"{title} ...") if not console.quiet else nullcontext():
            yield
    finally:
        _steps.reset(token)
    seconds = time.perf_counter() - start
    logger.info(f"{title}: done in {seconds:.1f}s", extra={"stillroom_step": title, "stillroom_phase": "end"})
    timings = _timings.get()
    if timings is not None:
        key = re.sub(r"\W+", "_", title.split(":", 1)[0].strip().lower())
        timings[key] = timings.get(key, 0.0) + seconds


def boundary(title: str) -> None:
    """A point between two pieces of one step (a chunk of a scoring job written): announced at
    debug level like a step's start, for a caller that watches where a job is."""
    logger.debug(title, extra={"stillroom_step": title, "stillroom_phase": "start"})


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Collect the seconds of every :func:`step` inside the block, per kind of step."""
    timings: dict[str, float] = {}
    token = _timings.set(timings)
    try:
        yield timings
    finally:
        _timings.reset(token)
