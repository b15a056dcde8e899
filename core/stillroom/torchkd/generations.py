"""Born-again self-distillation (Furlanello et al. 2018).

A student of the same architecture is trained from the teacher; then a fresh student is
trained from that student, and so on: each generation teaches the next with the response
loss. The paper finds later generations often match or beat their teacher. The schedule is
generic: ``fit(teacher, generation)`` trains one generation from ``teacher`` (the original
teacher for generation 0) and returns it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Model = TypeVar("Model")


def born_again(fit: Callable[[object, int], Model], teacher: object, generations: int) -> list[Model]:
    """Train ``generations`` students in sequence, each taught by the one before; all returned."""
    if generations < 1:
        raise ValueError("born_again: at least one generation")
    trained: list[Model] = []
    for g in range(generations):
        trained.append(fit(teacher if g == 0 else trained[-1], g))
    return trained
