"""Quality and fidelity metrics of the task types beyond binary: multiclass, multilabel,
regression, and mixed panels of regression and binary outputs.

Binary tasks keep their own richer treatment (:mod:`stillroom.metrics`, operating points,
alert overlap). Here every metric is a plain ``metric(y, outputs) -> float`` over whole arrays
(``y`` and ``outputs`` in the layouts of :mod:`stillroom.targets`), so
:func:`stillroom.metrics.bootstrap_many` can resample rows of a 2-D output exactly as it
resamples a score vector, and teacher, student and baseline share the same resamples.

Missing labels (NaN in a multilabel or regression column) are skipped per column, and a
column's metric is NaN when it is undefined there (one class, fewer than two values); the
macro average is over the defined columns. Each metric says whether larger is better, so
retention and gain can be oriented one way for all of them ("larger is better").

A mixed panel is judged group by group (:func:`output_groups`): its regression columns by the
regression metrics, its binary columns by the multilabel ones, under the same metric names, so
gates and reports read ``student.rmse`` or ``fidelity.roc_auc`` whatever the task type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import (
    average_precision_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from ..metrics import CountsMetric, counts_metric, expected_calibration_error, safe_metric
from .kinds import OUTPUT_TYPES, REGRESSION

ColumnMetric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class MetricDef:
    """A named metric of one task type; ``higher_is_better`` orients retention and gain."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool = True
    per_output: ColumnMetric | None = None  # also reported per output column when set
    best: float | None = None  # the best value it can take (1 for ROC-AUC, 0 for RMSE): how much room is left


# --------------------------------------------------------------------------- per-column helpers


def _columns(y: np.ndarray, out: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per output column, the rows where the label is present."""
    y2, o2 = _as_2d(y), _as_2d(out)
    pairs = []
    for j in range(y2.shape[1]):
        keep = ~np.isnan(y2[:, j])
        pairs.append((y2[keep, j], o2[keep, j]))
    return pairs


class macro:  # noqa: N801 - used like the function it was: ``macro(rmse)(y, out)``
    """Mean of ``column_metric`` over the columns where it is defined (NaN if none is).

    A class, not a closure, so the bootstrap can ask it for a resample's value from row counts
    (:meth:`from_counts`) when its column metric has that fast form (binary ROC-AUC and AP):
    a 27-endpoint panel is then not sorted 27 times per resample and model."""

    def __init__(self, column_metric: ColumnMetric) -> None:
        self.column_metric = column_metric

    def __call__(self, y: np.ndarray, out: np.ndarray) -> float:
        return _mean_of_defined(per_column(self.column_metric, y, out))

    def from_counts(self, y: np.ndarray, out: np.ndarray) -> CountsMetric | None:
        """The macro mean of a resample given as row counts, each column on its labelled rows;
        None unless every column with labels has the fast form."""
        y2, o2 = _as_2d(y), _as_2d(out)
        parts = []
        for j in range(y2.shape[1]):
            keep = ~np.isnan(y2[:, j])
            if not keep.any():
                continue  # never defined: not in the mean, as in __call__
            column = counts_metric(self.column_metric, y2[keep, j], o2[keep, j])
            if column is None:
                return None
            parts.append((keep, column))
        return lambda counts: _mean_of_defined([column(counts[keep]) for keep, column in parts])


def _mean_of_defined(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _as_2d(a: np.ndarray) -> np.ndarray:
    a2 = np.asarray(a, dtype=float)
    return a2[:, None] if a2.ndim == 1 else a2


def per_column(column_metric: ColumnMetric, y: np.ndarray, out: np.ndarray) -> list[float]:
    """``column_metric`` for each output column (NaN where undefined, or without a label: sklearn's
    average precision raises an IndexError on no rows, a resample can hold none of a rare
    endpoint's labelled molecules)."""
    return [safe_metric(column_metric, yc, oc) if len(yc) else math.nan for yc, oc in _columns(y, out)]


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(pred)) ** 2)))


def spearman(y: np.ndarray, pred: np.ndarray) -> float:
    """Spearman's rho, NaN (not a warning) when either side is constant or too short."""
    if len(y) < 2 or np.ptp(y) == 0 or np.ptp(pred) == 0:
        return math.nan
    return float(spearmanr(y, pred).statistic)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    return float(r2_score(y, pred)) if len(y) >= 2 and np.ptp(y) > 0 else math.nan


# --------------------------------------------------------------------------- multiclass


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == np.asarray(y)))


def macro_roc_auc_ovr(y: np.ndarray, proba: np.ndarray) -> float:
    """One-vs-rest ROC-AUC averaged over classes (scikit-learn's ``multi_class="ovr"``)."""
    k = proba.shape[1]
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(k))))


def multiclass_log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return float(log_loss(y, np.clip(proba, 1e-15, 1.0), labels=list(range(proba.shape[1]))))


def top_label_ece(y: np.ndarray, proba: np.ndarray) -> float:
    """ECE of the top-label confidence: is "90% sure" right 90% of the time?"""
    correct = (np.argmax(proba, axis=1) == np.asarray(y)).astype(float)
    return expected_calibration_error(correct, np.max(proba, axis=1))


# --------------------------------------------------------------------------- metric sets


METRICS: dict[str, tuple[MetricDef, ...]] = {
    "multiclass": (
        MetricDef("accuracy", accuracy, best=1.0),
        MetricDef("roc_auc", macro_roc_auc_ovr, best=1.0),
        MetricDef("log_loss", multiclass_log_loss, higher_is_better=False, best=0.0),
        MetricDef("ece", top_label_ece, higher_is_better=False, best=0.0),
    ),
    "multilabel": (
        MetricDef("roc_auc", macro(roc_auc_score), per_output=roc_auc_score, best=1.0),
        MetricDef("average_precision", macro(average_precision_score), per_output=average_precision_score, best=1.0),
    ),
    "regression": (
        MetricDef("rmse", macro(rmse), higher_is_better=False, per_output=rmse, best=0.0),
        MetricDef("mae", macro(mean_absolute_error), higher_is_better=False, per_output=mean_absolute_error, best=0.0),
        MetricDef("r2", macro(_r2), per_output=_r2, best=1.0),
        MetricDef("spearman", macro(spearman), per_output=spearman, best=1.0),
    ),
}
"""Headline metrics per task type (binary has its own, in :mod:`stillroom.evaluation`)."""


MIXED_KINDS = {"regression": "regression", "binary": "multilabel"}
"""Per output type of a mixed task, the task type whose metrics judge its columns."""


@dataclass(frozen=True)
class OutputGroup:
    """Output columns judged by one task type's metrics: ``kind`` keys :data:`METRICS`;
    ``columns`` are indices into the outputs, or ``None`` for all of them as they are (a
    multiclass label vector cannot be sliced by column)."""

    kind: str
    columns: np.ndarray | None = None

    def take(self, values: np.ndarray) -> np.ndarray:
        """The group's columns of labels or outputs (n, k)."""
        return values if self.columns is None else np.asarray(values)[:, self.columns]

    @property
    def holds_values(self) -> bool:
        """Whether the group's outputs are real values (regression), not probabilities."""
        return self.kind == REGRESSION

    def names(self, names: Sequence[str]) -> list[str]:
        """The group's output names."""
        return list(names) if self.columns is None else [names[j] for j in self.columns]


def output_groups(task_type: str, output_types: Sequence[str] | None = None) -> list[OutputGroup]:
    """How a task's outputs are judged: all together by the task type's metrics, or, for a
    mixed task, the columns of each output type present by :data:`MIXED_KINDS`'s task type."""
    if task_type != "mixed":
        return [OutputGroup(task_type)]
    if output_types is None or not set(output_types) <= set(OUTPUT_TYPES):
        raise ValueError(
            f"a mixed task needs output_types, one of {' or '.join(OUTPUT_TYPES)} per output column: got {output_types}"
        )
    kinds = np.array(list(output_types), dtype=object)
    groups = [OutputGroup(MIXED_KINDS[t], np.flatnonzero(kinds == t)) for t in OUTPUT_TYPES]
    return [g for g in groups if g.columns is not None and len(g.columns)]


def fidelity(
    task_type: str, teacher: np.ndarray, other: np.ndarray, output_types: Sequence[str] | None = None
) -> dict[str, float]:
    """How faithfully a model follows the teacher, without labels.

    multiclass: share of rows with the same top class, mean |probability gap|, mean
    KL(teacher || model); multilabel: per-label ROC-AUC of the model against the teacher's
    calls (p >= 0.5), share of equal calls, mean gap; regression: R2 and Spearman of the
    model against the teacher's values and their mean absolute difference (macro over outputs);
    mixed (``output_types`` required): regression fidelity on the regression columns and
    multilabel fidelity on the binary ones (their names do not overlap).
    """
    t, o = np.asarray(teacher, dtype=float), np.asarray(other, dtype=float)
    if task_type == "mixed":
        return {k: v for g in output_groups(task_type, output_types) for k, v in fidelity(g.kind, g.take(t), g.take(o)).items()}
    if task_type == "multiclass":
        kl = np.sum(t * (np.log(np.clip(t, 1e-12, 1)) - np.log(np.clip(o, 1e-12, 1))), axis=1)
        return {
            "agreement": float(np.mean(np.argmax(t, axis=1) == np.argmax(o, axis=1))),
            "mean_abs_gap": float(np.mean(np.abs(t - o))),
            "kl": float(np.mean(kl)),
        }
    if task_type == "multilabel":
        calls = (t >= 0.5).astype(float)
        return {
            "roc_auc": macro(roc_auc_score)(calls, o),
            "agreement": float(np.mean(calls == (o >= 0.5))),
            "mean_abs_gap": float(np.mean(np.abs(t - o))),
        }
    if task_type == "regression":
        return {"r2": macro(_r2)(t, o), "spearman": macro(spearman)(t, o), "mae": macro(mean_absolute_error)(t, o)}
    raise ValueError(f"no fidelity metrics for task type {task_type!r}")
