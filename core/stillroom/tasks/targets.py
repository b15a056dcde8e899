"""Response-based distillation targets (Hinton, Vinyals and Dean 2015), one class per task type.

Binary (:class:`SoftTargets`) is worked out below; :class:`MulticlassTargets`,
:class:`MultilabelTargets` and :class:`RegressionTargets` follow the same rules for the other
task types, and :func:`make_targets` / :func:`labels_only` pick the right one, so the pipeline
never branches on the task type itself. :class:`MixedTargets` is a panel of regression and
binary outputs in one model (logD beside hERG): each column follows its own kind's rules, and
:meth:`MixedTargets.part` hands out the columns of one kind as that kind's class.

A student with logit ``z`` learns from the teacher's probability ``p_t`` (logit ``z_t``) and,
where a label exists, from the hard label ``y``:

    loss = alpha * T^2 * CE(sigmoid(z_t / T), sigmoid(z / T)) + (1 - alpha) * CE(y, sigmoid(z))

Rows without a label (unlabelled pool, synthetic points) carry the soft term alone (weight 1).
The temperature acts in training only: at inference the student outputs ``sigmoid(z)``, on the
teacher's own probability scale. That is the point of doing it this way rather than fitting
tempered probabilities directly: a student trained on ``sigmoid(z_t / T)`` as its target
would predict tempered (under-confident) probabilities, and its Brier score, ECE and every
threshold chosen on it would be off (measured on the fraud benchmark: ECE 0.078 vs 0.001).
``T^2`` keeps the soft term's gradient on the same scale for every temperature, as in the
paper; ``T > 1`` makes the student match the teacher's ranking among the many rows it finds
unlikely, where most of the teacher's "dark knowledge" about near-misses lives.

Gradient and Hessian with respect to ``z`` (what a gradient-boosting student needs):

    g = alpha * T * (sigmoid(z / T) - sigmoid(z_t / T)) + (1 - alpha) * (sigmoid(z) - y)
    h = alpha * s_T * (1 - s_T) + (1 - alpha) * s * (1 - s)

For ``T = 1`` this is plain cross-entropy to the blended target
``alpha * p_t + (1 - alpha) * y``, which any cross-entropy objective accepts directly. The
baseline student (no teacher) is the special case ``teacher=None``: cross-entropy to ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

from .kinds import OUTPUT_TYPES, TASK_TYPES

EPS = 1e-7
MIN_HESSIAN = 1e-6  # keeps Newton steps finite where every row is already certain


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def soften(p: np.ndarray, temperature: float) -> np.ndarray:
    """Teacher probabilities softened by temperature in logit space: ``sigmoid(logit(p) / T)``."""
    if temperature == 1.0:
        return np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return expit(logit(p) / temperature)


class _Rows:
    """What every targets class answers the same way: its row count and whether a teacher speaks."""

    hard: np.ndarray
    teacher: np.ndarray | None

    def __len__(self) -> int:
        return len(self.hard)

    @property
    def has_teacher(self) -> bool:
        return self.teacher is not None


@dataclass(frozen=True)
class SoftTargets(_Rows):
    """Everything a student learns from on one set of rows.

    ``hard`` holds 0/1 labels and NaN where a row has none; ``teacher`` the teacher's
    positive-class probability per row, or ``None`` for the no-teacher baseline.
    """

    task_type: ClassVar[str] = "binary"

    hard: np.ndarray
    teacher: np.ndarray | None = None
    temperature: float = 1.0
    alpha: float = 0.7

    def __post_init__(self) -> None:
        hard = np.asarray(self.hard, dtype=float)
        object.__setattr__(self, "hard", hard)
        if self.teacher is None:
            if np.isnan(hard).any():
                raise ValueError("SoftTargets: rows without a label need teacher outputs")
            return
        teacher = np.asarray(self.teacher, dtype=float)
        if teacher.shape != hard.shape:
            raise ValueError(f"SoftTargets: teacher outputs {teacher.shape} and labels {hard.shape} differ in shape")
        if not self.temperature > 0 or not 0 <= self.alpha <= 1:
            raise ValueError("SoftTargets: temperature must be > 0 and alpha in [0, 1]")
        object.__setattr__(self, "teacher", teacher)

    @classmethod
    def labels_only(cls, y: np.ndarray) -> SoftTargets:
        """Targets of the baseline: the hard labels, no teacher."""
        return cls(hard=np.asarray(y, dtype=float))

    @property
    def labelled(self) -> np.ndarray:
        """Rows that carry a hard label."""
        return ~np.isnan(self.hard)

    @property
    def needs_custom_loss(self) -> bool:
        """Whether plain cross-entropy to :meth:`blended` is *not* the same loss (``T != 1``)."""
        return self.teacher is not None and self.temperature != 1.0

    def _weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row weight of the soft term and the hard labels with NaN as 0."""
        labelled = ~np.isnan(self.hard)
        if self.teacher is None:
            return np.zeros(len(self)), self.hard
        return np.where(labelled, self.alpha, 1.0), np.where(labelled, self.hard, 0.0)

    def blended(self) -> np.ndarray:
        """The probability the student should output at inference: ``a * p_t + (1 - a) * y``."""
        if self.teacher is None:
            return self.hard.copy()
        a, y = self._weights()
        return a * np.clip(self.teacher, EPS, 1 - EPS) + (1 - a) * y

    def initial_logit(self) -> float:
        """The best constant logit: log-odds of the mean blended target (where boosting starts)."""
        return float(logit(np.array([self.blended().mean()]))[0])

    def gradient(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the per-row loss with respect to the student logit ``z``."""
        a, y = self._weights()
        s = expit(z)
        grad, hess = (1 - a) * (s - y), (1 - a) * s * (1 - s)
        if self.teacher is not None:
            T = self.temperature
            s_t = expit(z / T)
            grad = grad + a * T * (s_t - soften(self.teacher, T))
            hess = hess + a * s_t * (1 - s_t)
        return grad, np.maximum(hess, MIN_HESSIAN)

    def loss(self, z: np.ndarray) -> float:
        """Mean loss of student logits ``z`` (for early stopping and reports)."""
        a, y = self._weights()
        per_row = (1 - a) * _cross_entropy(y, z)
        if self.teacher is not None:
            T = self.temperature
            per_row = per_row + a * T**2 * _cross_entropy(soften(self.teacher, T), z / T)
        return float(per_row.mean())


def _cross_entropy(target: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``CE(target, sigmoid(z))`` per row, computed stably from the logit."""
    return -(target * log_expit(z) + (1 - target) * log_expit(-z))


# --- the other task types ------------------------------------------------------------------


def _check_mix(temperature: float, alpha: float, name: str) -> None:
    if not temperature > 0 or not 0 <= alpha <= 1:
        raise ValueError(f"{name}: temperature must be > 0 and alpha in [0, 1]")


@dataclass(frozen=True)
class MulticlassTargets(_Rows):
    """Targets for one-of-k labels: ``hard`` int (n,) with -1 where a row has no label,
    ``teacher`` class probabilities (n, k) or ``None`` for the baseline.

    Loss per row (``z`` the student's k logits)::

        alpha * T^2 * KL(softmax(log p_t / T) || softmax(z / T)) + (1 - alpha) * CE(y, softmax(z))

    rows without a label carry the soft term alone. As in the binary case the temperature
    is for training only: the student predicts ``softmax(z)`` on the teacher's scale.
    """

    task_type: ClassVar[str] = "multiclass"

    hard: np.ndarray
    teacher: np.ndarray | None = None
    temperature: float = 1.0
    alpha: float = 0.7
    n_classes: int | None = None

    def __post_init__(self) -> None:
        hard = np.asarray(self.hard)
        if hard.dtype.kind == "f":
            hard = np.where(np.isnan(hard), -1, hard)
        hard = hard.astype(int)
        object.__setattr__(self, "hard", hard)
        if self.teacher is None:
            if (hard < 0).any():
                raise ValueError("MulticlassTargets: rows without a label need teacher outputs")
            object.__setattr__(self, "n_classes", self.n_classes or int(hard.max()) + 1)
            return
        teacher = np.asarray(self.teacher, dtype=float)
        if teacher.ndim != 2 or len(teacher) != len(hard):
            raise ValueError(f"MulticlassTargets: teacher outputs {teacher.shape} do not match {len(hard)} rows x classes")
        _check_mix(self.temperature, self.alpha, "MulticlassTargets")
        object.__setattr__(self, "teacher", teacher)
        object.__setattr__(self, "n_classes", teacher.shape[1])
        if hard.max(initial=-1) >= teacher.shape[1]:
            raise ValueError(f"MulticlassTargets: a label is >= the teacher's {teacher.shape[1]} classes")

    @property
    def labelled(self) -> np.ndarray:
        return self.hard >= 0

    def one_hot(self) -> np.ndarray:
        """Hard labels as (n, k) indicator rows (all zero where a row has no label)."""
        assert self.n_classes is not None, "set in __post_init__"
        out = np.zeros((len(self), int(self.n_classes)))
        rows = np.flatnonzero(self.labelled)
        out[rows, self.hard[rows]] = 1.0
        return out

    def soft(self) -> np.ndarray:
        """Teacher probabilities re-tempered: ``softmax(log p_t / T)``."""
        if self.teacher is None:
            raise ValueError("MulticlassTargets: no teacher")
        return softmax(np.log(np.clip(self.teacher, EPS, 1.0)) / self.temperature, axis=1)

    def _weights(self) -> np.ndarray:
        if self.teacher is None:
            return np.zeros(len(self))
        return np.where(self.labelled, self.alpha, 1.0)

    def blended(self) -> np.ndarray:
        """The distribution the student should output: ``a * p_t + (1 - a) * onehot(y)``."""
        if self.teacher is None:
            return self.one_hot()
        a = self._weights()[:, None]
        return a * self.teacher + (1 - a) * self.one_hot()

    def loss(self, z: np.ndarray) -> float:
        """Mean loss of student logits ``z`` (n, k): a reference for torch losses and reports."""
        a = self._weights()
        per_row = -(1 - a) * np.sum(self.one_hot() * log_softmax(z, axis=1), axis=1)
        if self.teacher is not None:
            T, q = self.temperature, self.soft()
            kl = np.sum(q * (np.log(np.clip(q, 1e-300, 1.0)) - log_softmax(z / T, axis=1)), axis=1)
            per_row = per_row + a * T**2 * kl
        return float(per_row.mean())


@dataclass(frozen=True)
class _ColumnTargets(_Rows):
    """Targets laid out as k output columns: ``hard`` float (n, k) with NaN where a value is
    missing, ``teacher`` (n, k) or ``None`` for the baseline."""

    hard: np.ndarray
    teacher: np.ndarray | None = None
    temperature: float = 1.0
    alpha: float = 0.7

    def __post_init__(self) -> None:
        object.__setattr__(self, "hard", _as_2d(self.hard))
        if self.teacher is not None:
            teacher = _as_2d(self.teacher)
            if teacher.shape != self.hard.shape:
                raise ValueError(f"{type(self).__name__}: teacher outputs {teacher.shape} and labels {self.hard.shape} differ")
            _check_mix(self.temperature, self.alpha, type(self).__name__)
            object.__setattr__(self, "teacher", teacher)

    @property
    def n_outputs(self) -> int:
        return self.hard.shape[1]

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.hard)


@dataclass(frozen=True)
class MultilabelTargets(_ColumnTargets):
    """Targets for k independent yes/no labels (probabilities from the teacher). Each label is
    a binary problem, so :meth:`column` hands out :class:`SoftTargets` and every binary
    student loss applies."""

    task_type: ClassVar[str] = "multilabel"

    def column(self, j: int) -> SoftTargets:
        """Binary targets of label ``j``. Without a teacher, rows missing label ``j`` are dropped
        by the caller (see :meth:`rows`): a baseline cannot learn from a missing label."""
        if self.teacher is None:
            return SoftTargets(self.hard[self.rows(j), j])
        return SoftTargets(self.hard[:, j], self.teacher[:, j], self.temperature, self.alpha)

    def rows(self, j: int) -> np.ndarray:
        """Row indices label ``j``'s targets cover (all rows when a teacher fills the gaps)."""
        if self.teacher is not None:
            return np.arange(len(self))
        return np.flatnonzero(~np.isnan(self.hard[:, j]))

    def blended(self) -> np.ndarray:
        """Per label ``a * p_t + (1 - a) * y`` (``p_t`` where the label is missing)."""
        if self.teacher is None:
            return self.hard.copy()
        return np.column_stack([self.column(j).blended() for j in range(self.n_outputs)])


@dataclass(frozen=True)
class RegressionTargets(_ColumnTargets):
    """Targets for k real-valued outputs. The student regresses on
    ``alpha * teacher + (1 - alpha) * y`` where a measurement exists and on the teacher alone
    where not (squared error makes the blend the minimiser of the blended loss). The
    temperature is ignored: there is none for real values."""

    task_type: ClassVar[str] = "regression"

    def blended(self) -> np.ndarray:
        """(n, k) regression targets; NaN only where neither a label nor a teacher exists."""
        if self.teacher is None:
            return self.hard.copy()
        return np.where(self.labelled, self.alpha * self.teacher + (1 - self.alpha) * np.nan_to_num(self.hard), self.teacher)

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, values)`` for output ``j``: the rows that have a target and their targets."""
        values = self.blended()[:, j]
        rows = np.flatnonzero(~np.isnan(values))
        return rows, values[rows]

    def rows(self, j: int) -> np.ndarray:
        """Row indices output ``j``'s targets cover (as :meth:`MultilabelTargets.rows`)."""
        return self.column(j)[0]


@dataclass(frozen=True)
class MixedTargets(_ColumnTargets):
    """Targets for a panel of k outputs of different kinds, ``output_types[j]`` one of
    :data:`OUTPUT_TYPES` per column: teacher values for regression columns, teacher
    probabilities for binary ones. Each kind keeps its own rules, so the columns of one kind
    are handed out as that kind's targets (:meth:`part`) rather than re-implemented here."""

    task_type: ClassVar[str] = "mixed"

    output_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        kinds = tuple(self.output_types)
        if len(kinds) != self.n_outputs:
            raise ValueError(f"MixedTargets: {len(kinds)} output type(s) for {self.n_outputs} output column(s)")
        unknown = sorted(set(kinds) - set(OUTPUT_TYPES))
        if unknown:
            raise ValueError(f"MixedTargets: unknown output type(s) {unknown}; expected {' or '.join(OUTPUT_TYPES)}")
        object.__setattr__(self, "output_types", kinds)

    def columns_of(self, kind: str) -> np.ndarray:
        """Indices of the output columns of ``kind`` (one of :data:`OUTPUT_TYPES`)."""
        if kind not in OUTPUT_TYPES:
            raise ValueError(f"MixedTargets: unknown output type {kind!r}; expected {' or '.join(OUTPUT_TYPES)}")
        return np.flatnonzero(np.array(self.output_types, dtype=object) == kind)

    @property
    def regression_columns(self) -> np.ndarray:
        return self.columns_of("regression")

    @property
    def binary_columns(self) -> np.ndarray:
        return self.columns_of("binary")

    def part(self, kind: str) -> MultilabelTargets | RegressionTargets:
        """The columns of ``kind`` as that kind's targets (binary columns as multilabel), in
        column order: what a student or an evaluation written for one kind reuses."""
        cols = self.columns_of(kind)
        teacher = None if self.teacher is None else self.teacher[:, cols]
        cls = MultilabelTargets if kind == "binary" else RegressionTargets
        return cls(self.hard[:, cols], teacher, self.temperature, self.alpha)

    def _locate(self, j: int) -> tuple[MultilabelTargets | RegressionTargets, int]:
        """Column ``j``'s part and its index there."""
        kind = self.output_types[j]
        return self.part(kind), int(np.searchsorted(self.columns_of(kind), j))

    def column(self, j: int) -> SoftTargets | tuple[np.ndarray, np.ndarray]:
        """Output ``j`` as its kind gives it: :class:`SoftTargets` for a binary column (see
        :meth:`MultilabelTargets.column`), ``(rows, values)`` for a regression column (see
        :meth:`RegressionTargets.column`)."""
        part, k = self._locate(j)
        return part.column(k)

    def rows(self, j: int) -> np.ndarray:
        """Row indices output ``j``'s targets cover."""
        part, k = self._locate(j)
        return part.rows(k)

    def blended(self) -> np.ndarray:
        """(n, k): each column blended by its kind's rule (NaN where nothing speaks for a value)."""
        out = self.hard.copy()
        for kind in OUTPUT_TYPES:
            cols = self.columns_of(kind)
            if len(cols):
                out[:, cols] = self.part(kind).blended()
        return out


Targets = SoftTargets | MulticlassTargets | MultilabelTargets | RegressionTargets | MixedTargets
_BY_TYPE: dict[str, Any] = {
    "binary": SoftTargets,
    "multiclass": MulticlassTargets,
    "multilabel": MultilabelTargets,
    "regression": RegressionTargets,
    "mixed": MixedTargets,
}


def make_targets(
    task_type: str,
    hard: np.ndarray,
    teacher: np.ndarray | None,
    temperature: float = 1.0,
    alpha: float = 0.7,
    output_types: Sequence[str] | None = None,
) -> Targets:
    """The targets object of ``task_type`` (one of :data:`TASK_TYPES`). ``output_types`` (one
    of :data:`OUTPUT_TYPES` per column) is required for ``mixed``; other task types ignore it."""
    if task_type not in _BY_TYPE:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    if task_type != "mixed":
        return _BY_TYPE[task_type](hard, teacher, temperature, alpha)
    if output_types is None:
        raise ValueError(f"a mixed task needs output_types: one of {' or '.join(OUTPUT_TYPES)} per output column")
    return MixedTargets(hard, teacher, temperature, alpha, tuple(output_types))


def labels_only(task_type: str, hard: np.ndarray, output_types: Sequence[str] | None = None) -> Targets:
    """Targets of the no-teacher baseline for ``task_type``."""
    return make_targets(task_type, hard, None, output_types=output_types)


def missing_labels(task_type: str, n: int, n_outputs: int) -> np.ndarray:
    """Hard labels for ``n`` rows without any (pool, synthetic points) in ``task_type``'s layout."""
    if task_type == "multiclass":
        return np.full(n, -1.0)
    if task_type == "binary":
        return np.full(n, np.nan)
    return np.full((n, n_outputs), np.nan)


def _as_2d(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr
