"""How well one input column alone predicts the labels, per task type: the leak detector.

A column that separates the training labels almost perfectly on its own is, in practice,
never a discovery: it is the label under another name (a fraud scenario code, a diagnosis
column, the target copied into the features) or an id that happens to be ordered by class.
Teacher, student and baseline all score 1.000 on it and every verdict becomes meaningless,
so :mod:`stillroom.distillation.guards` asks this module, before any training, how well each
input separates the labels:

* class labels (binary): the ROC-AUC of the raw column, oriented (``max(auc, 1 - auc)``: a
  column that is high for the negatives separates as well); multiclass: per class, the ROC-AUC
  of the column read as a lookup table (each value's, or quantile bin's, share of that class, in
  sample), the worst class (every class must be separated for the column to be the label);
* yes/no outputs (multilabel, the binary columns of a mixed panel): the best label column's
  oriented ROC-AUC (one leaked label is enough to void that output's verdict);
* values (regression, the value columns of a mixed panel): the best target's |Spearman rho|.

The scale is comparable (1 = perfect, 0.5 or 0 = nothing); the measure is named in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from .kinds import BINARY, MULTICLASS, REGRESSION, label_kinds


@dataclass(frozen=True)
class Separation:
    """How well one column separates the labels: ``score`` on ``measure``'s scale, for ``label``."""

    score: float
    measure: str
    label: str


def separation(
    task_type: str, values: np.ndarray, y: np.ndarray, labels: list[str], output_types: list[str] | None = None
) -> Separation:
    """The best separation of the labels ``y`` (layout of :func:`stillroom.tasks.kinds.label_array`)
    by the column ``values``; NaN score when it cannot be measured (a constant column, one class)."""
    x = np.asarray(values, dtype=float)
    if task_type == BINARY:
        return Separation(_oriented_auc(np.asarray(y).astype(int), x), "roc_auc", labels[0])
    if task_type == MULTICLASS:
        classes, bins = np.unique(y), _bins(x)
        per_class = [_oriented_auc((np.asarray(y) == c).astype(int), _bin_rate(bins, np.asarray(y) == c)) for c in classes]
        finite = [v for v in per_class if math.isfinite(v)]
        return Separation(min(finite) if finite else math.nan, "worst one-vs-rest roc_auc", labels[0])
    y2 = np.asarray(y, dtype=float).reshape(len(x), -1)
    kinds = label_kinds(task_type, output_types, y2.shape[1])
    best = Separation(math.nan, "roc_auc", labels[0])
    for j, (name, kind) in enumerate(zip(labels, kinds, strict=True)):
        known = ~np.isnan(y2[:, j])
        if kind == REGRESSION:
            found = Separation(_abs_spearman(y2[known, j], x[known]), "|spearman|", name)
        else:
            found = Separation(_oriented_auc(y2[known, j].astype(int), x[known]), "roc_auc", name)
        if math.isfinite(found.score) and not (math.isfinite(best.score) and best.score >= found.score):
            best = found
    return best


BINS = 50
"""Bins of a column for a multiclass check: its values when it has at most this many, else quantiles."""


def _bins(x: np.ndarray) -> np.ndarray:
    """The bin of every value: a code column (scenario 0..3) keeps its values, a continuous one
    gets quantile bins."""
    values = np.unique(x)
    if len(values) <= BINS:
        return np.searchsorted(values, x)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, BINS + 1)[1:-1]))
    return np.searchsorted(edges, x)


def _bin_rate(bins: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Each row's bin's share of ``member`` rows: the column read as a lookup table for one class,
    so a code whose middle value is a class separates it as well as one at either end."""
    rate = np.bincount(bins, weights=member.astype(float)) / np.maximum(np.bincount(bins), 1)
    return rate[bins]


def _oriented_auc(y: np.ndarray, x: np.ndarray) -> float:
    """ROC-AUC of a raw column, whichever way round it points (NaN without both classes or values)."""
    if len(np.unique(y)) < 2 or np.ptp(x) == 0:
        return math.nan
    auc = float(roc_auc_score(y, x))
    return max(auc, 1.0 - auc)


def _abs_spearman(y: np.ndarray, x: np.ndarray) -> float:
    if len(y) < 3 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return math.nan
    return abs(float(spearmanr(y, x).statistic))
