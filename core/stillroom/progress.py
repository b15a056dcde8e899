"""Progress of long work on the console, and how long each kind of step took.

A distillation spends minutes to hours in a few steps (teacher training, teacher scoring,
student fitting); a user must see which one is running, and a reviewer how much each cost:
training time is part of a model's energy bill, beside its scoring cost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console

console = Console(stderr=True, log_path=False)
_timings: ContextVar[dict[str, float] | None] = ContextVar("stillroom_step_timings", default=None)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a step while it runs and how long it took when done.

    Inside :func:`timed`, the seconds are added up per kind of step: the words before the
    colon of the title (``"teacher: scoring 1,000 rows"`` counts as ``teacher``).
    """
    start = time.perf_counter()
    with console.status(f"[bold]{title}[/bold] ..."):
        yield
    seconds = time.perf_counter() - start
    console.log(f"{title}: done in {seconds:.1f}s")
    timings = _timings.get()
    if timings is not None:
        key = re.sub(r"\W+", "_", title.split(":", 1)[0].strip().lower())
        timings[key] = timings.get(key, 0.0) + seconds


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Collect the seconds of every :func:`step` inside the block, per kind of step."""
    timings: dict[str, float] = {}
    token = _timings.set(timings)
    try:
        yield timings
    finally:
        _timings.reset(token)
