"""Task-type plumbing shared by teachers and students: shapes of labels and outputs.

The core's contract (CORE_TASKTYPES): binary -> P(positive) (n,); multiclass -> (n, k)
probabilities; multilabel -> (n, k) probabilities; regression -> (n, k) values; mixed -> (n, k),
each column a value or a probability as its output type says (an ADMET panel: logD, solubility,
hERG, AMES in one model). Every target object exposes ``hard``, ``teacher``, ``temperature``
and ``alpha``; these helpers turn any of them into (n, k) arrays with a kind per column, so one
training loop serves every task type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stillroom.contract import MULTICLASS, output_kinds


@dataclass(frozen=True)
class Matrix:
    """Targets as 2-D arrays: ``hard`` (n, k) NaN = missing (multiclass: one-hot, NaN rows
    unlabelled), ``teacher`` (n, k) or None, the recipe, and each column's kind
    (:func:`stillroom.contract.output_kinds`)."""

    hard: np.ndarray
    teacher: np.ndarray | None
    temperature: float
    alpha: float
    kinds: tuple[str, ...]

    def columns(self, kind: str) -> np.ndarray:
        """Positions of the outputs of one kind."""
        return np.flatnonzero(np.asarray(self.kinds) == kind)

    @property
    def n_outputs(self) -> int:
        return self.hard.shape[1]


def as_matrix(targets: Any, task_type: str, n_classes: int | None = None) -> Matrix:
    """Any core targets object -> :class:`Matrix`."""
    hard = np.asarray(targets.hard, dtype=float)
    teacher = None if targets.teacher is None else np.asarray(targets.teacher, dtype=float)
    if task_type == MULTICLASS:
        k = teacher.shape[1] if teacher is not None else int(n_classes or (np.nanmax(hard) + 1))
        onehot = np.full((len(hard), k), np.nan)
        ok = hard >= 0
        onehot[ok] = 0.0
        onehot[np.flatnonzero(ok), hard[ok].astype(int)] = 1.0
        hard = onehot
    elif hard.ndim == 1:
        hard = hard[:, None]
    if teacher is not None and teacher.ndim == 1:
        teacher = teacher[:, None]
    kinds = output_kinds(task_type, hard.shape[1], getattr(targets, "output_types", None))
    return Matrix(hard, teacher, float(getattr(targets, "temperature", 1.0)), float(getattr(targets, "alpha", 0.0)), kinds)


def blended(m: Matrix) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight) per cell: alpha*teacher + (1-alpha)*label where labelled, teacher
    where not, label alone without a teacher; weight 0 where there is nothing to learn."""
    labelled = ~np.isnan(m.hard)
    if m.teacher is None:
        return np.where(labelled, m.hard, 0.0), labelled.astype(float)
    target = np.where(labelled, m.alpha * m.teacher + (1 - m.alpha) * np.nan_to_num(m.hard), m.teacher)
    return target, np.isfinite(m.teacher).astype(float)


def subset_matrix(m: Matrix, rows: np.ndarray) -> Matrix:
    """The same targets on some rows only (a boolean mask or indices)."""
    teacher = None if m.teacher is None else m.teacher[rows]
    return Matrix(m.hard[rows], teacher, m.temperature, m.alpha, m.kinds)


def calibration_reference(m: Matrix) -> np.ndarray:
    """What conformal intervals must cover, (n, k) (multiclass: (n,) class index, NaN = none):
    the labels, or, for an output without a single label (molecules judged against the teacher),
    the teacher's values (value outputs) and calls at 0.5 (probability outputs)."""
    if m.kinds and m.kinds[0] == "multiclass":
        hard = m.hard
        if not np.isfinite(hard).any() and m.teacher is not None:
            return m.teacher.argmax(axis=1).astype(float)
        labelled = np.isfinite(hard).all(axis=1)
        return np.where(labelled, np.nan_to_num(hard).argmax(axis=1), np.nan)
    y = m.hard.copy()
    for j, kind in enumerate(m.kinds):
        if not np.isfinite(y[:, j]).any() and m.teacher is not None:
            y[:, j] = m.teacher[:, j] if kind == "regression" else (m.teacher[:, j] >= 0.5).astype(float)
    return y
