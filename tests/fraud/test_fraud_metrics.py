"""Fraud metrics against values computed by hand on toy data."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from stillroom_fraud import metrics as fm


@pytest.fixture
def two_days() -> tuple[pd.DataFrame, np.ndarray]:
    """Day 0: A max .9 (had fraud), B .8 (clean), C .3 (fraud). Day 1: A .2 clean, B .7 fraud, C .6 fraud."""
    frame = pd.DataFrame(
        {
            "TX_TIME_DAYS": [0, 0, 0, 0, 1, 1, 1],
            "CUSTOMER_ID": ["A", "A", "B", "C", "A", "B", "C"],
            "TX_FRAUD": [0, 1, 0, 1, 0, 1, 1],
        }
    )
    return frame, np.array([0.9, 0.1, 0.8, 0.3, 0.2, 0.7, 0.6])


def test_card_precision_at_k_by_hand(two_days: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, scores = two_days
    # k=2: day 0 top cards A (fraud via its .1 transaction), B (clean) -> 1/2; day 1 B, C -> 2/2
    assert fm.card_precision_at_k(frame, scores, k=2) == pytest.approx(0.75)
    assert fm.card_precision_at_k(frame, scores, k=1) == pytest.approx(1.0)
    # k=3 > cards per day: still divided by k (handbook): 2/3 on both days
    assert fm.card_precision_at_k(frame, scores, k=3) == pytest.approx(2 / 3)


def test_card_precision_with_custom_columns(two_days: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, scores = two_days
    renamed = frame.rename(columns={"TX_TIME_DAYS": "day", "CUSTOMER_ID": "card", "TX_FRAUD": "y"})
    assert fm.card_precision_at_k(renamed, scores, 2, day_col="day", card_col="card", label_col="y") == pytest.approx(0.75)


def _roc_toy() -> tuple[np.ndarray, np.ndarray]:
    negatives = 0.05 + 0.1 * np.arange(10)  # .05 .15 ... .95
    positives = np.array([0.99, 0.9, 0.5, 0.02])
    return np.r_[np.zeros(10), np.ones(4)], np.r_[negatives, positives]


def test_recall_at_fpr_by_hand() -> None:
    y, s = _roc_toy()
    assert fm.recall_at_fpr(y, s, 0.0) == 0.25  # only .99 above every negative
    assert fm.recall_at_fpr(y, s, 0.1) == 0.5  # threshold .9 lets negative .95 through
    assert fm.recall_at_fpr(y, s, 0.15) == 0.5
    assert fm.recall_at_fpr(y, s, 0.5) == 0.75  # threshold .5: five negatives above
    assert fm.recall_at_fpr(y, s, 1.0) == 1.0


def test_alert_budget_precision_and_recall() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.1, 0.1, 0.05, 0.0])
    assert fm.precision_within_alert_budget(y, s, 0.2) == 0.5  # top 2: .9 fraud, .8 clean
    assert fm.recall_within_alert_budget(y, s, 0.2) == pytest.approx(1 / 3)
    assert fm.precision_within_alert_budget(y, s, 0.3) == pytest.approx(2 / 3)
    assert fm.precision_within_alert_budget(y, s, 0.01) == 1.0  # at least one alert
    assert math.isnan(fm.recall_within_alert_budget(np.zeros(10), s, 0.2))


def test_expected_cost_by_hand() -> None:
    y = [1, 1, 0, 0, 0]
    s = [0.9, 0.2, 0.8, 0.1, 0.1]  # at .5: one missed fraud, one false alert
    assert fm.expected_cost(y, s, 0.5) == pytest.approx((100 + 5) / 5)
    assert fm.expected_cost(y, s, 0.5, cost_fn=10, cost_fp=1, per="total") == 11.0
    assert fm.expected_cost(y, s, 0.0) == pytest.approx(3 * 5 / 5)  # alert all: three false alerts
    with pytest.raises(ValueError, match="per"):
        fm.expected_cost(y, s, 0.5, per="card")  # type: ignore[arg-type]


def test_group_rates_by_hand() -> None:
    frame = pd.DataFrame({"segment": ["a", "a", "a", "a", "b", "b"]})
    y = np.array([1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.1, 0.8, 0.2, 0.1, 0.2])
    table = fm.group_rates(frame, y, s, 0.5, "segment").set_index("segment")
    assert list(table.columns) == ["n", "fraud_rate", "alert_rate", "tpr", "fpr", "precision"]
    a, b = table.loc["a"], table.loc["b"]
    assert (a["n"], a["fraud_rate"], a["alert_rate"], a["tpr"], a["fpr"], a["precision"]) == (4, 0.5, 0.5, 0.5, 0.5, 0.5)
    assert (b["n"], b["fraud_rate"], b["alert_rate"], b["fpr"]) == (2, 0.0, 0.0, 0.0)
    assert math.isnan(b["tpr"]) and math.isnan(b["precision"])  # no fraud, no alerts


MLFLOW_KEY = re.compile(r"^[\w\-./ ]+$")


def test_fraud_metrics_bundle(two_days: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, scores = two_days
    y = frame["TX_FRAUD"].to_numpy()
    out = fm.fraud_metrics(y, scores, frame, threshold=0.5, config={"card_k": 2, "budget_fraction": 0.5})
    expected = {
        "roc_auc",
        "average_precision",
        "recall_at_fpr_0_001",
        "recall_at_fpr_0_005",
        "recall_at_fpr_0_01",
        "card_precision_at_2",
        "handbook_card_precision_at_2",
        "precision_at_budget",
        "recall_at_budget",
        "expected_cost",
        "brier",
        "ece",
    }
    assert set(out) == expected
    assert all(MLFLOW_KEY.match(k) for k in out)
    assert out["card_precision_at_2"] == pytest.approx(0.75)
    assert out["precision_at_budget"] == pytest.approx(1 / 3)  # top 3 of 7 rows: .9 and .8 clean, .7 fraud
    assert out["recall_at_budget"] == pytest.approx(1 / 4)
    assert all(isinstance(v, float) for v in out.values())


def test_fraud_metrics_defaults_without_frame() -> None:
    y, s = _roc_toy()
    out = fm.fraud_metrics(y, s, None, threshold=0.5)
    assert "card_precision_at_100" not in out
    assert out["recall_at_fpr_0_01"] == 0.25
    assert out["expected_cost"] == pytest.approx((100 * 1 + 5 * 5) / 14)  # .02 missed; five negatives >= .5


def test_settings_coerce_from_objects() -> None:
    class Section:
        card_k = 50
        fprs = [0.02]

    settings = fm.FraudMetricSettings.coerce(Section())
    assert settings.card_k == 50 and settings.fprs == (0.02,) and settings.cost_fn == fm.DEFAULT_COST_FN
    assert fm.FraudMetricSettings.coerce(None) == fm.FraudMetricSettings()
    assert fm.fpr_key(0.001) == "recall_at_fpr_0_001"
