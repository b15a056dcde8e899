"""ROC-AUC and average precision of a bootstrap resample from row counts, on scores sorted once.

Why: a bootstrap resample is the test set with each row counted 0, 1, 2... times, and both
ranking metrics depend only on the scores' order and the (weighted) positives and negatives
at each distinct score. scikit-learn sorts the resampled scores again on every call: on a
70,000-row fraud test week that is about 65 ms (ROC-AUC) and 48 ms (AP) per resample and per
model, minutes per run at 1,000 resamples. Sorting once and counting per resample is O(n)
with numpy's ``bincount``, and gives scikit-learn's value (the same formula on the same
counts: trapezoids between distinct thresholds for ROC-AUC, the uninterpolated step sum for
AP) up to floating-point rounding.

Only the plain binary case takes this path (labels 0/1, one score per row, no sample
weights); anything else goes to scikit-learn unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

CountsMetric = Callable[[np.ndarray], float]
"""``value(counts)``: the metric on the resample in which row ``i`` appears ``counts[i]`` times."""


class SortedScores:
    """One model's scores grouped by distinct value, highest first, with the labels beside them."""

    def __init__(self, y_true: np.ndarray, y_score: np.ndarray) -> None:
        order = np.argsort(-y_score, kind="mergesort")
        ranked = y_score[order]
        starts = np.r_[True, ranked[1:] != ranked[:-1]]
        self.group = np.empty(len(y_score), dtype=np.intp)
        self.group[order] = np.cumsum(starts) - 1  # each row's distinct-score rank, 0 = highest
        self.n_groups = int(starts.sum())
        self.positive = y_true.astype(np.float64)

    def per_group(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted positives and negatives at each distinct score, highest score first."""
        weights = counts.astype(np.float64)
        pos = np.bincount(self.group, weights=weights * self.positive, minlength=self.n_groups)
        total = np.bincount(self.group, weights=weights, minlength=self.n_groups)
        return pos, total - pos


def roc_auc_from_counts(scores: SortedScores, counts: np.ndarray) -> float:
    """The area under the ROC curve (ties counted half), NaN when a class is absent."""
    pos, neg = scores.per_group(counts)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    positives_above = np.cumsum(pos) - pos
    return float(np.dot(neg, positives_above + pos / 2.0) / (n_pos * n_neg))


def average_precision_from_counts(scores: SortedScores, counts: np.ndarray) -> float:
    """scikit-learn's average precision: precision at each distinct threshold, weighted by the
    recall it adds; NaN without positives (scikit-learn warns the value is undefined)."""
    pos, neg = scores.per_group(counts)
    n_pos = pos.sum()
    if n_pos == 0:
        return math.nan
    tp, flagged = np.cumsum(pos), np.cumsum(pos + neg)
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    return float(np.dot(pos, precision) / n_pos)


_FROM_COUNTS: dict[Callable[..., float], Callable[[SortedScores, np.ndarray], float]] = {
    roc_auc_score: roc_auc_from_counts,
    average_precision_score: average_precision_from_counts,
}


def counts_metric(metric: Callable[..., float], y_true: np.ndarray, y_score: np.ndarray) -> CountsMetric | None:
    """``metric`` on resamples given as row counts, if it is one of scikit-learn's binary ranking
    metrics and the data is plain binary (1-D 0/1 labels, 1-D finite scores), or if the metric
    builds its own (a ``from_counts(y_true, y_score)`` method, e.g. a macro mean over outputs of
    such a metric); else None, and the caller resamples rows for scikit-learn."""
    own = getattr(metric, "from_counts", None)
    if callable(own):
        built: CountsMetric | None = own(y_true, y_score)
        return built
    from_counts = _FROM_COUNTS.get(metric)
    if from_counts is None or y_true.ndim != 1 or y_score.ndim != 1 or len(y_true) != len(y_score) or not len(y_true):
        return None
    if not np.isin(y_true, (0, 1)).all() or not np.issubdtype(y_score.dtype, np.number) or not np.isfinite(y_score).all():
        return None
    scores = SortedScores(y_true, y_score)
    return lambda counts: from_counts(scores, counts)
