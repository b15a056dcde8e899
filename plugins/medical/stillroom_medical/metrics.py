"""What a medical-device quality file asks of a screening model, computed from scores.

* an operating point chosen on the validation split and then fixed (never tuned on test):
  the highest threshold at which validation sensitivity reaches the target (screening: miss
  few lesions), or specificity reaches its target, or Youden's J, or a fixed threshold;
* at that point, on test: sensitivity, specificity, PPV, NPV, accuracy (with bootstrap CIs);
* per class (one-vs-rest for multiclass: the top-scoring class is the call; per label for
  multilabel): AUROC, sensitivity, specificity, PPV, NPV and support;
* subgroups (site, sex, age group ...): the same per group, so a reviewer sees where the model
  is weaker; groups smaller than ``min_size`` are reported but flagged;
* calibration: ECE over equal-width bins and a reliability table for the diagram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

OPERATING_KINDS = ("sensitivity", "specificity", "youden", "threshold")


@dataclass(frozen=True)
class OperatingPoint:
    kind: str = "sensitivity"
    value: float = 0.9


def choose_threshold(y: np.ndarray, p: np.ndarray, op: OperatingPoint) -> float:
    """The threshold meeting the operating point on validation (scores >= threshold are positive)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    if op.kind == "threshold":
        return float(op.value)
    candidates = np.unique(np.concatenate([p, [np.inf]]))[::-1]  # high to low: calls grow
    pos, neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    tp = np.array([np.sum((p >= t) & (y == 1)) for t in candidates]) / pos
    tn = np.array([np.sum((p < t) & (y == 0)) for t in candidates]) / neg
    if op.kind == "sensitivity":
        ok = np.flatnonzero(tp >= op.value)
        return float(candidates[ok[0]]) if len(ok) else float(candidates[-1])
    if op.kind == "specificity":
        ok = np.flatnonzero(tn >= op.value)
        return float(candidates[ok[-1]]) if len(ok) else float(candidates[0])
    if op.kind == "youden":
        return float(candidates[int(np.argmax(tp + tn - 1))])
    raise ValueError(f"unknown operating point kind {op.kind!r} (known: {', '.join(OPERATING_KINDS)})")


def confusion_rates(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and accuracy of ``p >= threshold`` (NaN where undefined)."""
    y, call = np.asarray(y).astype(int), np.asarray(p, dtype=float) >= threshold
    tp, fp = int(np.sum(call & (y == 1))), int(np.sum(call & (y == 0)))
    fn, tn = int(np.sum(~call & (y == 1))), int(np.sum(~call & (y == 0)))
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "accuracy": _ratio(tp + tn, len(y)),
    }


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y).astype(int)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def calibration_table(y: np.ndarray, confidence: np.ndarray, correct: np.ndarray | None = None, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of confidence: mean confidence vs observed frequency (or accuracy), count.

    Binary: ``confidence`` = P(positive), observed = share of positives. Multiclass: top-label
    confidence and whether the top label was right (``correct``).
    """
    observed = np.asarray(y, dtype=float) if correct is None else np.asarray(correct, dtype=float)
    conf = np.asarray(confidence, dtype=float)
    bins = np.clip((conf * n_bins).astype(int), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            rows.append(
                {"bin": b, "confidence": conf[inside].mean(), "observed": observed[inside].mean(), "count": int(inside.sum())}
            )
    return pd.DataFrame(rows, columns=["bin", "confidence", "observed", "count"])


def ece(table: pd.DataFrame) -> float:
    """Expected calibration error: count-weighted mean |confidence - observed| over the bins."""
    if table.empty:
        return float("nan")
    w = table["count"] / table["count"].sum()
    return float(np.sum(w * np.abs(table["confidence"] - table["observed"])))


def one_vs_rest(y: np.ndarray, proba: np.ndarray, task_type: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per class/label: (0/1 truth, score, call or None). Multiclass calls are the argmax."""
    proba = np.asarray(proba, dtype=float)
    if task_type == "binary":
        return [(np.asarray(y).astype(int), proba, None)]
    out = []
    if task_type == "multiclass":
        top = proba.argmax(axis=1)
        for j in range(proba.shape[1]):
            out.append(((np.asarray(y) == j).astype(int), proba[:, j], top == j))
        return out
    for j in range(proba.shape[1]):
        known = ~np.isnan(y[:, j])
        out.append((np.where(known, y[:, j], -1).astype(int), proba[:, j], None))
    return out


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")
