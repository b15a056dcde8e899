"""Periods by calendar date: gaps for the label delay, enough history, dates inside the log,
and the handbook's removal of cards already known to be compromised."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from stillroom.contract import DataError
from stillroom_fraud.features import FeatureSettings
from stillroom_fraud.splits import SplitPlan, known_compromised, layout

FIRST, LAST = date(2026, 4, 1), date(2026, 6, 29)  # 90 days
SETTINGS = FeatureSettings()  # 30-day windows, 7-day delay: 37 days of history


def test_default_layout_ends_on_the_last_day_with_gaps() -> None:
    periods = layout(SplitPlan(train_days=14), SETTINGS, FIRST, LAST)
    assert periods.periods() == {
        "train": (48, 62),
        "train_gap": (62, 69),
        "validation": (69, 76),
        "validation_gap": (76, 83),
        "test": (83, 90),
    }
    dates = periods.dates(FIRST)
    assert dates["train"] == ["2026-05-19", "2026-06-01"] and dates["test"] == ["2026-06-23", "2026-06-29"]


def test_train_start_pins_the_layout_to_a_date() -> None:
    periods = layout(SplitPlan(7, 7, 7, train_start=date(2026, 5, 10)), SETTINGS, FIRST, LAST)
    assert periods.train == (39, 46) and periods.train_gap == (46, 53) and periods.test == (67, 74)
    assert periods.dates(FIRST)["validation"] == ["2026-05-24", "2026-05-30"]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (SplitPlan(7, train_start=date(2026, 4, 20)), "37 days of history.*start 2026-05-08 or later"),
        (SplitPlan(7, train_start=date(2026, 6, 10)), "test period would end on 2026-07-14.*runs from 2026-04-01 to 2026-06-29"),
        (SplitPlan(7, train_start=date(2027, 1, 1)), "would end on 2027"),
        (SplitPlan(30), "needs 37 days of history .*and then 58 days"),
    ],
    ids=["too-little-history", "ends-after-the-log", "starts-after-the-log", "log-too-short"],
)
def test_dates_outside_the_data_are_refused(plan: SplitPlan, message: str) -> None:
    with pytest.raises(DataError, match=message):
        layout(plan, SETTINGS, FIRST, LAST)


def test_shorter_windows_need_less_history() -> None:
    periods = layout(SplitPlan(7, train_start=date(2026, 4, 10)), FeatureSettings((1, 7), 2), FIRST, LAST)
    assert periods.train[0] == 9


def test_known_compromised_cards_are_those_with_a_fraud_known_by_then() -> None:
    days = np.array([10, 12, 20, 25, 12, 30, 5])
    cards = np.array(["a", "a", "a", "a", "b", "b", "c"])
    fraud = np.array([1, 0, 0, 0, 0, 0, 1.0])
    known = known_compromised(days, cards, fraud, history_start=8, delay_days=7)
    # card a: fraud on day 10, known from day 18 on; b never; c's fraud predates the history start
    np.testing.assert_array_equal(known, [False, False, True, True, False, False, False])
