"""Feature engineering for card transactions: the model inputs of every row of a transaction log.

Raw transactions (amount, time, card, terminal) say little on their own; fraud teams compare
each transaction with the card's recent spending and with the terminal's recent fraud history
(Le Borgne et al.'s handbook). Terminal fraud labels arrive late (investigations take days),
so terminal risk only uses labels older than ``delay_days``: a model must never see a label it
would not have had at scoring time.

Window conventions (times in whole seconds of the log's own clock, ``w`` in days):

- customer windows ``(t - w, t]``: the current transaction and earlier ones of the same card
  (ties at the same second: only rows up to the current one, in the order given);
- terminal windows ``[t - delay - w, t - delay)``: only transactions whose label is known at
  ``t``; a missing label (not known to be fraud) counts as genuine.

A row's features depend only on the rows inside its windows, never on what else the input
holds, so a nightly batch that carries ``lookback_days`` of history gets exactly (bit for bit)
the features training computed for the same rows. That is why amounts are summed as integers
(millionths of a currency unit, exact and order-free) rather than as floating-point prefix
sums, whose rounding would depend on every earlier row of the input.

Beyond the handbook's features, each customer window also gets the ratio of the amount to the
card's average in that window: a stolen card spent at five times the usual amount is a ratio,
and trees only approximate ratios with staircases. Measured on the simulator (one week of
labels, seeds 0-2), the ratios lifted the teacher's test AP from 0.687 to 0.710 and the
LightGBM student's from 0.661 to 0.690. Zero and negative amounts (card checks, refunds) count
in the windows like any other; the ratio divides by the window's average, floored at
``MIN_AVERAGE_AMOUNT``, so a card that only refunded or only verified gets a large finite
ratio for its first real purchase instead of a division by zero.

Everything is vectorised: one stable sort per entity on an (entity, time) key,
``searchsorted`` for the window bounds and prefix sums, O(n log n) and no per-card loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from stillroom.contract import ConfigError, DataError

SECONDS_PER_DAY = 86_400
DEFAULT_WINDOWS: tuple[int, ...] = (1, 7, 30)
DEFAULT_DELAY_DAYS = 7
NIGHT_LAST_HOUR = 6  # 00:00-06:59 counts as night, as in the handbook
THURSDAY = 3  # 1970-01-01, day 0 of the clock, was a Thursday (Monday = 0)
AMOUNT_UNITS = 10**6  # window sums are exact integers of millionths of a currency unit
MAX_ABS_AMOUNT = 1e12  # beyond this an amount in millionths no longer fits the integer sums
MIN_AVERAGE_AMOUNT = 0.01  # floor of the denominator of the amount-to-average ratios


def feature_names(windows: Sequence[int] = DEFAULT_WINDOWS) -> list[str]:
    """Model input columns for the given windows (never ids, labels or the scenario)."""
    names = ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT"]
    for w in windows:
        names += [
            f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW",
            f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW",
            f"CUSTOMER_ID_AMOUNT_RATIO_{w}DAY_WINDOW",
        ]
    for w in windows:
        names += [f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW", f"TERMINAL_ID_RISK_{w}DAY_WINDOW"]
    return names


FEATURES: list[str] = feature_names(DEFAULT_WINDOWS)


@dataclass(frozen=True)
class FeatureSettings:
    """The windows and the label delay: everything the features of a row depend on."""

    windows: tuple[int, ...] = DEFAULT_WINDOWS
    delay_days: int = DEFAULT_DELAY_DAYS

    def __post_init__(self) -> None:
        windows = tuple(int(w) for w in self.windows)
        if not windows or min(windows) < 1 or len(set(windows)) != len(windows):
            raise ConfigError(f"feature windows must be distinct whole days >= 1, got {list(self.windows)}")
        if self.delay_days < 0:
            raise ConfigError(f"the label delay must be >= 0 days, got {self.delay_days}")
        object.__setattr__(self, "windows", windows)

    @property
    def names(self) -> list[str]:
        return feature_names(self.windows)

    @property
    def lookback_days(self) -> int:
        """Days of history a row's features read: the terminal windows end ``delay_days`` back."""
        return self.delay_days + max(self.windows)


def engineer(
    seconds: np.ndarray,
    card: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    fraud: np.ndarray,
    settings: FeatureSettings = FeatureSettings(),
) -> pd.DataFrame:
    """The model inputs of every row, float64, in the rows' order.

    ``seconds``: int64 wall-clock seconds since 1970-01-01 (the log's own time zone);
    ``card``/``terminal``: ids of any type; ``amount``: float64; ``fraud``: 1, 0, or NaN for a
    label not known (yet). Rows in time order are cheapest (a transaction log is kept so); rows
    sharing a second count in the order given. The caller has checked for missing values.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    if len(seconds) > 1 and not (seconds[1:] >= seconds[:-1]).all():
        order = np.argsort(seconds, kind="stable")
        inputs = (seconds, card, terminal, amount, fraud)
        features = engineer(*(np.asarray(x)[order] for x in inputs), settings=settings)
        return features.set_axis(order).sort_index().reset_index(drop=True)
    amount = np.asarray(amount, dtype=np.float64)
    too_large = np.abs(amount) >= MAX_ABS_AMOUNT
    if too_large.any():
        raise DataError(f"amounts must be below {MAX_ABS_AMOUNT:g} in absolute value; found {amount[too_large][0]:g}")
    names = settings.names
    table = np.empty((len(names), len(seconds)))  # one block, handed to pandas without a copy
    out = dict(zip(names, table, strict=True))
    out["TX_AMOUNT"][:] = amount
    day = seconds // SECONDS_PER_DAY
    out["TX_DURING_WEEKEND"][:] = (day + THURSDAY) % 7 >= 5
    out["TX_DURING_NIGHT"][:] = (seconds - day * SECONDS_PER_DAY) // 3600 <= NIGHT_LAST_HOUR
    reach = settings.lookback_days * SECONDS_PER_DAY
    customers = _EntityTimeline(card, seconds, reach)
    millionths = np.rint(amount * AMOUNT_UNITS).astype(np.int64)
    for w in settings.windows:
        count, total = customers.trailing(millionths, w * SECONDS_PER_DAY)
        average = out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"]
        np.divide(total, count * float(AMOUNT_UNITS), out=average)
        out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"][:] = count
        np.divide(amount, np.maximum(average, MIN_AVERAGE_AMOUNT), out=out[f"CUSTOMER_ID_AMOUNT_RATIO_{w}DAY_WINDOW"])
    terminals = _EntityTimeline(terminal, seconds, reach)
    known_fraud = (np.asarray(fraud, dtype=np.float64) == 1).astype(np.int64)
    matured = terminals.bound(settings.delay_days * SECONDS_PER_DAY)
    for w in settings.windows:
        start = terminals.bound((settings.delay_days + w) * SECONDS_PER_DAY)
        count, frauds = terminals.window(known_fraud, start, matured)
        out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"][:] = count
        risk = out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"]
        risk[:] = 0.0
        np.divide(frauds, count, out=risk, where=count > 0)
    return pd.DataFrame(table.T, columns=names, copy=False)


class _EntityTimeline:
    """Rows of time-ordered input sorted by (entity, time), with a monotone integer key that
    never crosses entities.

    ``key = code(entity) * span + time`` with ``span`` larger than the time range plus any
    offset asked for (``reach``), so a ``searchsorted`` for ``key - offset`` stays inside the
    row's own entity block. The input being in time order, a stable sort by entity code alone
    gives that order (ties keep the given order), done as a radix sort on 16-bit digits.
    """

    def __init__(self, entity: np.ndarray, seconds: np.ndarray, reach: int) -> None:
        codes = pd.factorize(np.asarray(entity), use_na_sentinel=False)[0].astype(np.int64)
        relative = seconds - seconds.min() if len(seconds) else seconds
        span = (int(relative.max()) if len(relative) else 0) + reach + 1
        if len(codes) and (int(codes.max()) + 1) * span >= np.iinfo(np.int64).max:
            raise DataError(f"the log spans too long a time for {int(codes.max()) + 1:,} entities; score it in shorter periods")
        self.order = _stable_order(codes)
        self.key = (codes * span + relative)[self.order]

    def bound(self, offset: int, side: Literal["left", "right"] = "left") -> np.ndarray:
        """Sorted position of the first row of the same entity at or after ``t - offset``
        (``side="right"``: after it)."""
        return np.searchsorted(self.key, self.key - offset, side=side)

    def window(self, values: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count and exact integer sum of ``values`` over sorted positions ``[start, end)``, in row order.

        Prefix sums wrap modulo 2**64 (unsigned, well defined); a window's difference is exact
        whenever the window's own sum fits in int64, whatever the sum of the whole input.
        """
        prefix = np.zeros(len(values) + 1, dtype=np.uint64)
        np.cumsum(values[self.order].view(np.uint64), out=prefix[1:])
        sums = (prefix[end] - prefix[start]).view(np.int64)
        return self._scatter(end - start), self._scatter(sums)

    def _scatter(self, sorted_values: np.ndarray) -> np.ndarray:
        """Back from (entity, time) order to the caller's row order."""
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out

    def trailing(self, values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Count and sum over ``(t - width, t]``, the current row and earlier ones only."""
        return self.window(values, self.bound(width, side="right"), np.arange(1, len(self.key) + 1))


def _stable_order(codes: np.ndarray) -> np.ndarray:
    """``argsort(codes, kind="stable")`` for non-negative codes, as 16-bit radix passes (numpy
    sorts 16-bit integers by radix: several times faster than a 64-bit stable sort)."""
    if not len(codes) or int(codes.max()) >= 1 << 32:
        return np.argsort(codes, kind="stable")
    order = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    if int(codes.max()) >= 1 << 16:
        order = order[np.argsort((codes[order] >> 16).astype(np.uint16), kind="stable")]
    return order
