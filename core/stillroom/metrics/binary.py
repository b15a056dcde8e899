"""Metrics of binary probabilities: fidelity to a teacher, calibration, operating points.

Conventions: a row is *positive* (alerted) when ``score >= threshold``, as in
:func:`sklearn.metrics.roc_curve`; labels are 0/1. Plain numpy in, plain floats or frames out,
so values can be logged to MLflow without conversion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve

from .bootstrap import check_lengths, safe_metric

# --- fidelity


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
    check_lengths(len(t), [s])
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


# --- calibration


def reliability_curve(y_true: Any, p: Any, n_bins: int = 15) -> pd.DataFrame:
    """Per equal-width bin of ``[0, 1]``: mean predicted probability vs observed positive rate.

    Bin ``i`` holds ``i/n <= p < (i+1)/n`` (the last bin includes 1). Empty bins are kept
    with ``count == 0`` and NaN means, so the table always has ``n_bins`` rows and a
    reviewer sees where the model never predicts.
    """
    y, prob = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    check_lengths(len(y), [prob])
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


# --- operating points


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


# --- summary


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
