"""Operating point, rates, calibration: against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stillroom_medical.metrics import OperatingPoint, calibration_table, choose_threshold, confusion_rates, ece, one_vs_rest

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P = np.array([0.1, 0.2, 0.6, 0.3, 0.4, 0.7, 0.8, 0.9])


def test_threshold_reaching_a_sensitivity_on_validation() -> None:
    # positives score 0.4, 0.7, 0.8, 0.9: 75% sensitivity first at 0.7, 100% at 0.4
    assert choose_threshold(Y, P, OperatingPoint("sensitivity", 0.75)) == 0.7
    assert choose_threshold(Y, P, OperatingPoint("sensitivity", 0.9)) == 0.4
    # negatives 0.1, 0.2, 0.3, 0.6: specificity 100% needs threshold > 0.6 -> 0.7 is the lowest such score
    assert choose_threshold(Y, P, OperatingPoint("specificity", 1.0)) == 0.7
    assert choose_threshold(Y, P, OperatingPoint("threshold", 0.5)) == 0.5
    assert choose_threshold(Y, P, OperatingPoint("youden", 0.5)) in (0.4, 0.7)


def test_confusion_rates_by_hand() -> None:
    rates = confusion_rates(Y, P, 0.4)  # calls: 0.6, 0.4, 0.7, 0.8, 0.9 -> TP 4, FP 1, TN 3, FN 0
    assert rates == pytest.approx({"sensitivity": 1.0, "specificity": 0.75, "ppv": 0.8, "npv": 1.0, "accuracy": 7 / 8})
    none = confusion_rates(Y, P, 2.0)
    assert none["sensitivity"] == 0 and math.isnan(none["ppv"])


def test_calibration_table_and_ece() -> None:
    table = calibration_table(np.array([0, 1, 1, 1]), np.array([0.05, 0.15, 0.95, 0.95]), n_bins=10)
    # bins: [0, .1): conf .05 obs 0; [.1, .2): conf .15 obs 1; [.9, 1]: conf .95 obs 1
    assert list(table["count"]) == [1, 1, 2]
    assert ece(table) == pytest.approx((0.05 + 0.85 + 2 * 0.05) / 4)


def test_one_vs_rest() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    parts = one_vs_rest(np.array([0, 2, 2]), proba, "multiclass")
    assert [list(y) for y, _, _ in parts] == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    assert [list(c) for _, _, c in parts][1] == [False, True, False]
    ml = one_vs_rest(np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([[0.9, 0.1], [0.2, 0.7]]), "multilabel")
    assert list(ml[1][0]) == [-1, 1]
