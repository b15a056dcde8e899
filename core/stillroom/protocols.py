"""Protocols every teacher and student satisfies, and the descriptions they return.

The core never knows which library a model comes from: it talks to teachers and students
only through these protocols. A student hands the tracking module a :class:`NativeModel`
(flavor + object) instead of logging itself, so that only ``stillroom.tracking`` imports
MLflow and every student is stored in a native, non-pickle format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .targets import SoftTargets


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


@runtime_checkable
class Student(Protocol):
    """A small, fast model trained from teacher outputs (or from labels alone, as baseline).

    ``targets`` (:class:`stillroom.targets.SoftTargets`) carries the teacher's probabilities,
    the hard labels, the temperature and alpha, and the loss's gradient: a student minimises
    that loss and predicts on the teacher's probability scale (temperature 1). The baseline
    gets targets without a teacher. ``targets_valid`` is for early stopping.
    """

    def fit(
        self,
        X: Any,
        targets: SoftTargets,
        X_valid: Any | None = None,
        targets_valid: SoftTargets | None = None,
    ) -> Student: ...

    def predict(self, X: Any) -> np.ndarray: ...

    def describe(self) -> ModelDescription: ...

    def native_model(self) -> NativeModel: ...
