"""Leak-free training, validation and test periods of a transaction log, by calendar date.

Layout (whole days)::

    [history >= lookback][ train ][ delay ][ validation ][ delay ][ test ]

The gaps model the label delay: when the model is trained, the labels of the last
``delay_days`` are not known yet, so those transactions are neither trained on nor evaluated
(no future leaks); the first gap, unlabelled, is the pool the teacher labels for the student.
The history before training must cover the features' lookback (the longest window plus the
label delay), or the first training rows would get truncated windows. By default the layout
ends on the log's last date; ``train_start`` pins it to a date instead.

With ``drop_known_compromised`` (the handbook's protocol) a validation or test transaction on
day ``t`` is dropped when its card already had a fraud whose label was known at ``t`` (a fraud
on a day in ``[train start, t - delay)``): such cards are blocked, so detecting them again is
no achievement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from stillroom.contract import DataError

from .features import FeatureSettings

PERIODS = ("train", "train_gap", "validation", "validation_gap", "test")


@dataclass(frozen=True)
class SplitPlan:
    """Lengths of the periods in days, and where training starts (None: as late as the log allows)."""

    train_days: int
    validation_days: int = 7
    test_days: int = 7
    train_start: date | None = None
    drop_known_compromised: bool = True


@dataclass(frozen=True)
class SplitLayout:
    """Half-open day ranges ``[start, end)`` of the periods, in days since the log's first date."""

    train: tuple[int, int]
    train_gap: tuple[int, int]
    validation: tuple[int, int]
    validation_gap: tuple[int, int]
    test: tuple[int, int]

    def periods(self) -> dict[str, tuple[int, int]]:
        return {name: getattr(self, name) for name in PERIODS}

    def dates(self, first_date: date) -> dict[str, list[str]]:
        """First and last calendar date of every period (inclusive), for the lineage."""
        day = lambda i: (first_date + timedelta(days=i)).isoformat()  # noqa: E731
        return {name: [day(start), day(end - 1)] for name, (start, end) in self.periods().items()}


def layout(plan: SplitPlan, settings: FeatureSettings, first_date: date, last_date: date) -> SplitLayout:
    """Place the periods in a log spanning ``first_date..last_date``; dates outside it are a DataError."""
    lengths = [plan.train_days, settings.delay_days, plan.validation_days, settings.delay_days, plan.test_days]
    total, history, last_day = sum(lengths), settings.lookback_days, (last_date - first_date).days
    need = f"{history} days of history ({max(settings.windows)}-day windows, {settings.delay_days}-day label delay)"
    span = f"the log runs from {first_date} to {last_date}"
    if plan.train_start is None:
        start = last_day + 1 - total
        if start < history:
            raise DataError(
                f"the split needs {need} and then {total} days (train {plan.train_days}, delay {settings.delay_days}, "
                f"validation {plan.validation_days}, delay {settings.delay_days}, test {plan.test_days}), but {span}"
            )
    else:
        start = (plan.train_start - first_date).days
        if start < history:
            earliest = first_date + timedelta(days=history)
            raise DataError(f"train_start {plan.train_start}: its first rows need {need}, but {span}; start {earliest} or later")
    bounds = np.cumsum([start, *lengths]).tolist()
    if bounds[-1] > last_day + 1:
        end = first_date + timedelta(days=bounds[-1] - 1)
        raise DataError(
            f"train_start {plan.train_start}: the test period would end on {end} ({total} days of train, delay, validation, "
            f"delay and test), but {span}"
        )
    return SplitLayout(*[(bounds[i], bounds[i + 1]) for i in range(len(PERIODS))])


def in_period(days: np.ndarray, period: tuple[int, int]) -> np.ndarray:
    """Rows whose day lies in the half-open period."""
    return (days >= period[0]) & (days < period[1])


def known_compromised(days: np.ndarray, cards: np.ndarray, fraud: np.ndarray, history_start: int, delay_days: int) -> np.ndarray:
    """Rows whose card had a fraud since ``history_start`` that is known at the row's day.

    Known means the fraud day is before ``day - delay_days``; only the card's first such fraud
    day matters, so one groupby-min replaces any per-day loop.
    """
    frauds = (fraud == 1) & (days >= history_start)
    first_fraud = pd.Series(days[frauds]).groupby(cards[frauds]).min()
    first = pd.Series(cards).map(first_fraud).to_numpy(dtype=float, na_value=np.inf)
    return first < days - delay_days
