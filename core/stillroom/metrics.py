"""Generic, model-agnostic metrics for binary probabilities.

Every vertical judges teacher, student and baseline with the same few numbers: how well
each ranks and is calibrated, how faithfully the student follows the teacher, how stable
the score distribution is between training and scoring, all with bootstrap intervals so
a reviewer can tell a real gain from resampling noise. The functions take plain numpy
arrays (anything ``np.asarray`` accepts) and return plain floats, dicts or DataFrames,
so they can be logged to MLflow without conversion.

Conventions: a row is *positive* (alerted) when ``score >= threshold``, as in
:func:`sklearn.metrics.roc_curve`; labels are 0/1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

Metric = Callable[..., float]
"""``metric(y_true, y_score, *extra) -> float``, e.g. :func:`sklearn.metrics.roc_auc_score`."""

# Resample indices are drawn in blocks of about this many cells, so the bootstrap is
# vectorized without materializing an ``n_boot x n`` matrix for a million-row test set.
_BLOCK_CELLS = 4_000_000


class Interval(NamedTuple):
    """A point estimate with its bootstrap percentile interval (a plain 3-tuple too)."""

    point: float
    low: float
    high: float


# --------------------------------------------------------------------------- bootstrap


def resample_indices(n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` row-index arrays drawn with replacement, reproducibly by ``seed``.

    Drawn in vectorized blocks (one ``rng.integers`` call per block) rather than one call
    per resample; the block size depends only on ``n``, so a seed always gives the same
    resamples, which is what lets several models share them.
    """
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, n_boot, block):
        yield from rng.integers(0, n, size=(min(block, n_boot - start), n))


def safe_metric(metric: Metric, *arrays: np.ndarray) -> float:
    """The metric's value, or NaN where it is undefined (e.g. a sample with one class).

    scikit-learn signals "undefined" either with a ValueError (ROC AUC on one class) or
    with an UndefinedMetricWarning and a placeholder value; both become NaN here so a
    bootstrap can skip the resample instead of averaging in a meaningless 0.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            value = float(metric(*arrays))
        except (ValueError, UndefinedMetricWarning, ZeroDivisionError, FloatingPointError):
            return math.nan
    return value if math.isfinite(value) else math.nan


def bootstrap_distribution(
    metric: Metric,
    y_true: Any,
    scores: Mapping[str, Any],
    *extra: Any,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per model, the metric on each of the same ``n_boot`` resamples (NaN where undefined).

    ``extra`` arrays (weights, groups, ...) are resampled with the rows and passed to the
    metric after the scores.
    """
    y = np.asarray(y_true)
    arrays = {name: np.asarray(s) for name, s in scores.items()}
    extras = [np.asarray(e) for e in extra]
    _check_lengths(len(y), [*arrays.values(), *extras])
    values = {name: np.full(n_boot, math.nan) for name in arrays}
    for b, idx in enumerate(resample_indices(len(y), n_boot, seed)):
        y_b, extra_b = y[idx], [e[idx] for e in extras]
        for name, s in arrays.items():
            values[name][b] = safe_metric(metric, y_b, s[idx], *extra_b)
    return values


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the defined (non-NaN) bootstrap values; NaN if none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_many(
    metric: Metric,
    y_true: Any,
    scores: Mapping[str, Any],
    *extra: Any,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Point estimate and percentile CI per model, all models on the SAME resamples.

    Sharing resamples makes the intervals comparable: the difference between two models'
    intervals then reflects the models, not two different draws of the test set.
    """
    y = np.asarray(y_true)
    dists = bootstrap_distribution(metric, y, scores, *extra, n_boot=n_boot, seed=seed)
    extras = [np.asarray(e) for e in extra]
    return {
        name: Interval(safe_metric(metric, y, np.asarray(scores[name]), *extras), *percentile_interval(d, level))
        for name, d in dists.items()
    }


def bootstrap_ci(
    metric: Metric,
    y_true: Any,
    y_score: Any,
    *extra: Any,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``(point, low, high)``: the metric with a percentile bootstrap CI over resampled rows.

    Resamples where the metric is undefined (one class only) are skipped; if all are,
    the interval is NaN.
    """
    return bootstrap_many(metric, y_true, {"_": y_score}, *extra, n_boot=n_boot, level=level, seed=seed)["_"]


def bootstrap_difference(
    metric: Metric,
    y_true: Any,
    a: Any,
    b: Any,
    *extra: Any,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Paired CI of ``metric(a) - metric(b)``, e.g. "gained vs the no-teacher baseline".

    Paired (both scored on each resample) because the two models' errors are correlated
    on the same rows; the paired interval is much tighter than comparing two separate CIs.
    """
    y = np.asarray(y_true)
    extras = [np.asarray(e) for e in extra]
    dists = bootstrap_distribution(metric, y, {"a": a, "b": b}, *extras, n_boot=n_boot, seed=seed)
    point = safe_metric(metric, y, np.asarray(a), *extras) - safe_metric(metric, y, np.asarray(b), *extras)
    return Interval(point, *percentile_interval(dists["a"] - dists["b"], level))


def _check_lengths(n: int, arrays: list[np.ndarray]) -> None:
    """Fail early and clearly on misaligned inputs instead of deep inside a metric."""
    bad = [len(a) for a in arrays if len(a) != n]
    if bad:
        raise ValueError(f"all arrays must have {n} rows like y_true; got lengths {bad}")


# --------------------------------------------------------------------------- fidelity


def fidelity(teacher_p: Any, student_p: Any, threshold: float = 0.5, student_threshold: float | None = None) -> dict[str, float]:
    """How faithfully the student follows the teacher, independent of the labels.

    ``agreement`` is the share of rows where both make the same alert decision (the
    decision is what matters); each side may have its own threshold, e.g. both chosen on
    validation for the same alert rate (``student_threshold`` defaults to ``threshold``).
    Agreement is dominated by the many rows neither model alerts on, so ``alert_overlap``
    asks the reviewer's question: of the teacher's alerts, which share does the student
    raise too (NaN when the teacher raises none)? ``spearman`` is rank agreement over all
    rows, where the bulk of near-zero scores weighs most; the gaps show how far individual
    probabilities drift.
    """
    t, s = np.asarray(teacher_p, dtype=float), np.asarray(student_p, dtype=float)
    _check_lengths(len(t), [s])
    s_threshold = threshold if student_threshold is None else student_threshold
    gap = np.abs(t - s)
    teacher_alerts, student_alerts = t >= threshold, s >= s_threshold
    return {
        "agreement": float(np.mean(teacher_alerts == student_alerts)),
        "alert_overlap": float(student_alerts[teacher_alerts].mean()) if teacher_alerts.any() else math.nan,
        "spearman": _spearman(t, s),
        "mean_abs_gap": float(gap.mean()),
        "max_abs_gap": float(gap.max()),
    }


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho, NaN (not a warning) when either side is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


# --------------------------------------------------------------------------- calibration


def reliability_curve(y_true: Any, p: Any, n_bins: int = 15) -> pd.DataFrame:
    """Per equal-width bin of ``[0, 1]``: mean predicted probability vs observed positive rate.

    Bin ``i`` holds ``i/n <= p < (i+1)/n`` (the last bin includes 1). Empty bins are kept
    with ``count == 0`` and NaN means, so the table always has ``n_bins`` rows and a
    reviewer sees where the model never predicts.
    """
    y, prob = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    _check_lengths(len(y), [prob])
    bins = np.clip((prob * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, weights=prob, minlength=n_bins) / count
        fraction_positive = np.bincount(bins, weights=y, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "mean_predicted": mean_predicted,
            "fraction_positive": fraction_positive,
            "count": count,
        }
    )


def expected_calibration_error(y_true: Any, p: Any, n_bins: int = 15) -> float:
    """ECE: bin-count-weighted mean of ``|mean predicted - fraction positive|`` (equal-width bins)."""
    curve = reliability_curve(y_true, p, n_bins)
    filled = curve[curve["count"] > 0]
    gaps = (filled["mean_predicted"] - filled["fraction_positive"]).abs()
    return float(np.average(gaps, weights=filled["count"]))


def calibration(y_true: Any, p: Any, n_bins: int = 15) -> dict[str, float]:
    """Brier score and ECE: can the probabilities be read as probabilities?"""
    return {
        "brier": float(brier_score_loss(y_true, p)),
        "ece": expected_calibration_error(y_true, p, n_bins),
    }


# --------------------------------------------------------------------------- stability


def psi(expected: Any, actual: Any, n_bins: int = 10, eps: float = 1e-6) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Bins are quantiles of ``expected`` (so each holds about ``1/n_bins`` of it); duplicate
    edges from ties are merged, so a spike of identical scores is one bin, not several
    empty ones. Rule of thumb: < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted.
    """
    e = np.asarray(expected, dtype=float)
    inner = np.unique(np.quantile(e, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    n_cells = len(inner) + 1
    e_counts = np.bincount(np.searchsorted(inner, e, side="right"), minlength=n_cells)
    a_counts = np.bincount(np.searchsorted(inner, np.asarray(actual, dtype=float), side="right"), minlength=n_cells)
    return psi_from_counts(e_counts, a_counts, eps)


def psi_from_counts(expected_counts: Any, actual_counts: Any, eps: float = 1e-6) -> float:
    """PSI between two binnings of the same edges: ``sum((a - e) * ln(a / e))`` over shares.

    Shares are floored at ``eps`` so an empty bin contributes a large but finite term.
    """
    e = _shares(expected_counts, eps)
    a = _shares(actual_counts, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: Any, eps: float) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    return np.maximum(c / max(c.sum(), 1.0), eps)


def histogram(p: Any, n_bins: int = 20, range: tuple[float, float] = (0.0, 1.0)) -> dict[str, list[float]]:  # noqa: A002
    """A JSON-ready fixed-edge histogram of scores, stored at training time as the reference.

    Scores outside ``range`` are clipped into the end bins so no row is silently dropped.
    Scoring jobs later call :func:`psi_from_histogram` with it: no raw training scores
    need to be kept next to the model.
    """
    edges = np.linspace(range[0], range[1], n_bins + 1)
    return {"edges": edges.tolist(), "counts": _bin_counts(p, edges).tolist()}


def psi_from_histogram(reference_counts: Any, edges: Any, actual: Any, eps: float = 1e-6) -> float:
    """PSI of ``actual`` scores against a stored reference :func:`histogram`."""
    return psi_from_counts(reference_counts, _bin_counts(actual, np.asarray(edges, dtype=float)), eps)


def _bin_counts(values: Any, edges: np.ndarray) -> np.ndarray:
    """Counts per ``[edge_i, edge_i+1)`` bin, the last closed, out-of-range values clipped in."""
    v = np.clip(np.asarray(values, dtype=float), edges[0], edges[-1])
    return np.histogram(v, bins=edges)[0]


# --------------------------------------------------------------------------- operating points


def threshold_for_alert_rate(scores: Any, rate: float) -> float:
    """The lowest observed score whose alert set (``score >= t``) stays within ``rate``.

    An alert rate is an analyst budget, so ties are never split and never overflow it:
    with ties at the boundary the realized rate is below ``rate``. If even the top score
    exceeds the budget, the threshold sits just above the maximum (no alerts).
    """
    s = np.sort(np.asarray(scores, dtype=float))
    budget = math.floor(rate * len(s) + 1e-9)
    distinct = np.unique(s)
    n_alerts = len(s) - np.searchsorted(s, distinct, side="left")
    within = distinct[n_alerts <= budget]
    return float(within[0]) if within.size else float(np.nextafter(s[-1], np.inf))


def operating_point_at_fpr(y_true: Any, scores: Any, fpr: float) -> tuple[float, float, float]:
    """``(threshold, tpr, fpr)`` of the ROC point with the highest TPR whose FPR <= ``fpr``.

    All ROC points are kept (``drop_intermediate=False``): dropping collinear points could
    hide the best admissible one. The first point has threshold ``inf`` (no alerts).
    """
    fprs, tprs, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    i = int(np.flatnonzero(fprs <= fpr + 1e-12)[-1])
    return float(thresholds[i]), float(tprs[i]), float(fprs[i])


def threshold_at_fpr(y_true: Any, scores: Any, fpr: float) -> float:
    """The lowest threshold (most recall) whose false-positive rate is at most ``fpr``."""
    return operating_point_at_fpr(y_true, scores, fpr)[0]


# --------------------------------------------------------------------------- summary


def classification_summary(y_true: Any, p: Any) -> dict[str, float]:
    """Ranking (ROC AUC, average precision) and probabilistic (log loss) quality; NaN if undefined."""
    return {
        "roc_auc": safe_metric(roc_auc_score, y_true, p),
        "average_precision": safe_metric(average_precision_score, y_true, p),
        "log_loss": safe_metric(_binary_log_loss, y_true, p),
    }


def _binary_log_loss(y_true: Any, p: Any) -> float:
    """Log loss with both labels declared, so a one-class sample still has a value."""
    return float(log_loss(y_true, np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15), labels=[0, 1]))


def metric_key(name: str) -> str:
    """``name`` made a valid MLflow metric key (alphanumerics, ``_ - . / `` and space)."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name)
