"""Protocols every teacher and student satisfies, and the descriptions they return.

The core never knows which library a model comes from: it talks to teachers and students
only through these protocols. A student hands the tracking module a :class:`NativeModel`
(flavor + object) instead of logging itself, so that only ``stillroom.tracking`` imports
MLflow and every student is stored in a native, non-pickle format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ModelDescription:
    """What a reviewer needs to know about a model without opening it."""

    name: str
    kind: str
    n_parameters: int
    size_bytes: int
    uri: str | None = None
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NativeModel:
    """A trained model in a form the tracking module can log natively.

    ``flavor`` names the MLflow flavor (``"lightgbm"``, ``"sklearn"``, ``"pytorch"`` ...);
    ``model`` is the object that flavor's ``log_model`` accepts.
    """

    flavor: str
    model: Any


@runtime_checkable
class Teacher(Protocol):
    """A big, slow, accurate model whose behaviour the student learns.

    ``predict`` returns, for binary tasks, the probability of the positive class, shape (n,).
    ``native_model`` returns the teacher in a loggable form, or ``None`` when it already
    lives in MLflow (then ``describe().uri`` points at it).
    """

    def predict(self, X: Any) -> np.ndarray: ...

    def describe(self) -> ModelDescription: ...

    def native_model(self) -> NativeModel | None: ...


@dataclass(frozen=True)
class Recipe:
    """How the student learns from the teacher (response-based distillation settings).

    ``alpha`` is the weight of the teacher's soft targets; ``1 - alpha`` goes to the hard
    labels. ``temperature`` softens the teacher's probabilities in logit space.
    """

    temperature: float = 1.0
    alpha: float = 0.7


@runtime_checkable
class Student(Protocol):
    """A small, fast model trained from teacher outputs (or from labels alone, as baseline)."""

    def fit(
        self,
        X: Any,
        targets: np.ndarray,
        X_valid: Any | None = None,
        targets_valid: np.ndarray | None = None,
    ) -> Student: ...

    def predict(self, X: Any) -> np.ndarray: ...

    def describe(self) -> ModelDescription: ...

    def native_model(self) -> NativeModel: ...
