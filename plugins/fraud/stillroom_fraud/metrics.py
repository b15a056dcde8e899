"""Fraud metrics: what a fraud operations team and its model-risk reviewer ask about.

Transaction fraud is rare (well under 1%) and investigated by a fixed number of
analysts, so ROC AUC alone says little. These metrics answer the operational questions:
how much fraud is caught at a tolerable false-positive rate, how precise the alert queue
is within the analysts' budget, how many compromised cards the daily top-k review finds
(the Fraud Detection Handbook's card precision top-k), what the errors cost, and whether
some customer groups are alerted more than others.

Conventions follow :mod:`stillroom.contract.metrics`: labels 0/1, an alert is ``score >= threshold``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from stillroom.contract.metrics import calibration, metric_key, operating_point_at_fpr, safe_metric

DEFAULT_COST_FN = 100.0
"""Cost of a missed fraud: a typical unrecovered card-fraud loss plus chargeback handling."""
DEFAULT_COST_FP = 5.0
"""Cost of a false alert: a few minutes of analyst review plus customer friction."""


@dataclass(frozen=True)
class FraudMetricSettings:
    """The knobs of :func:`fraud_metrics`; defaults are the handbook's and a typical bank's."""

    fprs: tuple[float, ...] = (0.001, 0.005, 0.01)
    card_k: int = 100
    budget_fraction: float = 0.005
    cost_fn: float = DEFAULT_COST_FN
    cost_fp: float = DEFAULT_COST_FP
    n_bins: int = 15
    day_col: str = "TX_TIME_DAYS"
    card_col: str = "CUSTOMER_ID"
    label_col: str = "TX_FRAUD"

    @classmethod
    def coerce(cls, config: Any = None) -> FraudMetricSettings:
        """Settings from None, an instance, a mapping, or any object (e.g. a pydantic
        section) carrying some of the field names; missing fields keep their defaults."""
        if config is None or isinstance(config, cls):
            return config or cls()
        names = [f.name for f in dataclasses.fields(cls)]
        if isinstance(config, Mapping):
            found = {n: config[n] for n in names if n in config}
        else:
            found = {n: getattr(config, n) for n in names if hasattr(config, n)}
        if "fprs" in found:
            found["fprs"] = tuple(found["fprs"])
        return cls(**found)


def recall_at_fpr(y_true: Any, scores: Any, fpr: float) -> float:
    """Share of fraud caught at the lowest threshold whose false-positive rate is <= ``fpr``."""
    return operating_point_at_fpr(y_true, scores, fpr)[1]


def fpr_key(fpr: float) -> str:
    """``recall_at_fpr_0_001`` for 0.001: a stable, MLflow-safe metric name."""
    return metric_key(f"recall_at_fpr_{fpr:g}".replace(".", "_"))


# --------------------------------------------------------------------------- card precision


def card_precision_at_k(
    frame: pd.DataFrame,
    scores: Any,
    k: int = 100,
    day_col: str = "TX_TIME_DAYS",
    card_col: str = "CUSTOMER_ID",
    label_col: str = "TX_FRAUD",
    remove_detected: bool = False,
) -> float:
    """Card precision top-k, averaged over days.

    Analysts review cards, not transactions: each day a card scores its riskiest
    transaction and counts as fraudulent if any of its transactions that day was. The
    ``k`` riskiest cards of the day are reviewed; precision is the fraudulent share of
    them, divided by ``k`` even on a day with fewer cards (as in the handbook, since the
    unused review capacity is lost). ``scores`` align with ``frame`` rows by position.

    ``remove_detected=False`` (``card_precision_at_<k>``) judges each day on its own.
    ``remove_detected=True`` (``handbook_card_precision_at_<k>``) is the Fraud Detection
    Handbook's definition (Le Borgne et al., ``card_precision_top_k``): a compromised card found
    in a day's top k is blocked, so its transactions on later days are removed before those days
    are ranked. A card caught once can no longer fill the queue again, so the per-day figure
    reads higher than the handbook's whenever frauds on one card span several days.
    """
    per_card = (
        pd.DataFrame(
            {
                "day": frame[day_col].to_numpy(),
                "card": frame[card_col].to_numpy(),
                "fraud": frame[label_col].to_numpy(),
                "score": np.asarray(scores, dtype=float),
            }
        )
        .groupby(["day", "card"], sort=True)
        .agg(score=("score", "max"), fraud=("fraud", "max"))
        .reset_index()
    )
    if not len(per_card):
        return math.nan
    if not remove_detected:
        top = per_card.sort_values(["day", "score"], ascending=[True, False], kind="stable").groupby("day").head(k)
        per_day = top.groupby("day")["fraud"].sum() / k
        return float(per_day.mean())
    detected: set[Any] = set()
    precisions = []
    for _, day in per_card.groupby("day", sort=True):
        day = day[~day["card"].isin(detected)]
        top = day.sort_values("score", ascending=False, kind="stable").head(k)
        caught = top.loc[top["fraud"] == 1, "card"]
        precisions.append(len(caught) / k)
        detected.update(caught.tolist())
    return float(np.mean(precisions))


# --------------------------------------------------------------------------- alert budget


def _top_budget_mask(scores: Any, budget_fraction: float) -> np.ndarray:
    """Rows inside the alert budget: the ``max(1, floor(fraction * n))`` highest scores.

    Exactly that many rows (ties broken by row order) so the queue size is the budget.
    """
    s = np.asarray(scores, dtype=float)
    k = max(1, math.floor(budget_fraction * len(s) + 1e-9))
    mask = np.zeros(len(s), dtype=bool)
    mask[np.argsort(-s, kind="stable")[:k]] = True
    return mask


def precision_within_alert_budget(y_true: Any, scores: Any, budget_fraction: float = 0.005) -> float:
    """Fraud share of the alert queue when analysts review the top ``budget_fraction`` of rows."""
    return float(np.asarray(y_true)[_top_budget_mask(scores, budget_fraction)].mean())


def recall_within_alert_budget(y_true: Any, scores: Any, budget_fraction: float = 0.005) -> float:
    """Share of all fraud that lands in the top ``budget_fraction`` alert queue (NaN if no fraud)."""
    y = np.asarray(y_true)
    total = y.sum()
    return float(y[_top_budget_mask(scores, budget_fraction)].sum() / total) if total else math.nan


# --------------------------------------------------------------------------- cost


def expected_cost(
    y_true: Any,
    scores: Any,
    threshold: float,
    cost_fn: float = DEFAULT_COST_FN,
    cost_fp: float = DEFAULT_COST_FP,
    per: Literal["transaction", "total"] = "transaction",
) -> float:
    """Cost of the errors at ``threshold``: ``cost_fn * FN + cost_fp * FP``.

    Defaults (FN 100, FP 5) stand for an unrecovered fraud loss vs an analyst review;
    a bank should set its own. ``per="transaction"`` (default) divides by the number of
    rows so runs on differently sized test sets compare; ``"total"`` does not.
    """
    y = np.asarray(y_true)
    alerts = (np.asarray(scores, dtype=float) >= threshold).astype(int)
    _, fp, fn, _ = confusion_matrix(y, alerts, labels=[0, 1]).ravel()
    total = cost_fn * fn + cost_fp * fp
    if per == "total":
        return float(total)
    if per == "transaction":
        return float(total / max(len(y), 1))
    raise ValueError(f"per must be 'transaction' or 'total', not {per!r}")


# --------------------------------------------------------------------------- subgroups


def group_rates(frame: pd.DataFrame, y_true: Any, scores: Any, threshold: float, group_col: str) -> pd.DataFrame:
    """Per group of ``frame[group_col]``: size, fraud rate, alert rate, TPR, FPR, precision.

    A reviewer reads it for disparate impact: a group alerted far more often at the same
    fraud rate, or whose fraud is caught less often. Rates with an empty denominator are NaN.
    """
    y = np.asarray(y_true).astype(int)
    alert = (np.asarray(scores, dtype=float) >= threshold).astype(int)
    counts = (
        pd.DataFrame({"group": frame[group_col].to_numpy(), "y": y, "alert": alert, "tp": y & alert})
        .assign(fp=lambda d: (1 - d["y"]) & d["alert"])
        .groupby("group", sort=True, dropna=False)
        .agg(n=("y", "size"), positives=("y", "sum"), alerts=("alert", "sum"), tp=("tp", "sum"), fp=("fp", "sum"))
    )
    out = pd.DataFrame(
        {
            "n": counts["n"],
            "fraud_rate": counts["positives"] / counts["n"],
            "alert_rate": counts["alerts"] / counts["n"],
            "tpr": _ratio(counts["tp"], counts["positives"]),
            "fpr": _ratio(counts["fp"], counts["n"] - counts["positives"]),
            "precision": _ratio(counts["tp"], counts["alerts"]),
        }
    )
    return out.rename_axis(group_col).reset_index()


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return num / den.where(den > 0)


# --------------------------------------------------------------------------- bundle


def fraud_metrics(
    y_true: Any,
    scores: Any,
    frame: pd.DataFrame | None,
    threshold: float,
    config: Any = None,
) -> dict[str, float]:
    """All fraud metrics of one model, keyed by MLflow-safe names.

    ``config`` is anything :meth:`FraudMetricSettings.coerce` accepts. Card precision
    needs the transaction ``frame`` (day, card, label columns) and is left out without it.
    """
    cfg = FraudMetricSettings.coerce(config)
    y, s = np.asarray(y_true), np.asarray(scores, dtype=float)
    out: dict[str, float] = {
        "roc_auc": safe_metric(roc_auc_score, y, s),
        "average_precision": safe_metric(average_precision_score, y, s),
    }
    out.update({fpr_key(f): safe_metric(recall_at_fpr, y, s, f) for f in cfg.fprs})
    if frame is not None:
        columns = (cfg.day_col, cfg.card_col, cfg.label_col)
        out[f"card_precision_at_{cfg.card_k}"] = card_precision_at_k(frame, s, cfg.card_k, *columns)
        out[f"handbook_card_precision_at_{cfg.card_k}"] = card_precision_at_k(
            frame, s, cfg.card_k, *columns, remove_detected=True
        )
    out["precision_at_budget"] = precision_within_alert_budget(y, s, cfg.budget_fraction)
    out["recall_at_budget"] = recall_within_alert_budget(y, s, cfg.budget_fraction)
    out["expected_cost"] = expected_cost(y, s, threshold, cfg.cost_fn, cfg.cost_fp)
    out.update(calibration(y, s, cfg.n_bins))
    return out
