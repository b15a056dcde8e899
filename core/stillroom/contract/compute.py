"""How many threads a model may use right now, to score or to train.

Why: a run times teacher, student and baseline on the same compute (one core by default,
``evaluation.efficiency_cores``), because a ratio of a model spread over every core to one
that runs on a single core moves with whatever else the machine runs. The core pins the
process to its cores and caps the thread pools it knows (OpenMP, BLAS, torch); a model that
sets its own threads on every call (``torch.set_num_threads(self.threads)``) or creates its
own pools (an ONNX Runtime session's ``intra_op_num_threads``) asks :func:`inference_threads`
instead, so it runs on the budget while it is timed and on its own setting otherwise.

The same budget caps training: a search running several trials at once in threads gives each
trial its share of the cores (:func:`training_threads`), since a LightGBM or torch student
asking for every core in each of two trials on two cores oversubscribes them, and OpenMP's
spin-waits then make training many times slower, not twice.

The budget is a context variable: it holds in the thread (and context) that set it (the one
that times the models, or one search trial), not in other threads meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .._runtime import usable_cores

__all__ = ["inference_threads", "thread_budget", "training_threads"]

_BUDGET: ContextVar[int | None] = ContextVar("stillroom_thread_budget", default=None)


def inference_threads(own: int = 0) -> int:
    """The threads to use now: ``own`` (a model's setting; 0 or less: the library's default),
    capped by the budget while the core times models on a fixed number of cores."""
    budget = _BUDGET.get()
    if budget is None:
        return own
    return budget if own <= 0 else min(own, budget)


def training_threads(own: int = 0) -> int:
    """The threads to train on now: ``own`` (a model's setting) capped by the budget; 0 or less:
    the budget, or every usable core without one (what "0 threads" means in the plugins)."""
    threads = inference_threads(own)
    return threads if threads > 0 else usable_cores()


@contextmanager
def thread_budget(threads: int | None) -> Iterator[None]:
    """Models asking :func:`inference_threads` or :func:`training_threads` get at most
    ``threads`` inside the block (``None``: no budget, each model's own setting)."""
    if threads is not None and threads < 1:
        raise ValueError(f"thread_budget: threads must be >= 1 or None, got {threads}")
    token = _BUDGET.set(threads)
    try:
        yield
    finally:
        _BUDGET.reset(token)
