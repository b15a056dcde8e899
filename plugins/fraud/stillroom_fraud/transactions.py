"""A raw transaction log: the fraud team's own export, read, checked and put in time order.

A log has one row per card transaction with a time, a card (customer) id, a terminal
(merchant) id, an amount and a fraud label; :class:`RawFormat` names those columns (the
handbook's ``TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD`` by default) and holds
the feature settings. Every model trained from a log, or from the simulator (which hands its
transactions over the same way), carries its :class:`RawFormat`, so a scoring job turns a raw
batch into exactly the model inputs training computed: both go through
:meth:`TransactionLog.feature_blocks`.

Times are date-times (ISO 8601 text, or Parquet/pandas timestamps); a time zone, when given,
is dropped after conversion to its own wall clock, so "night" and calendar days are the
log's local ones. The log keeps the parsed time and amount in their columns (one type in
every file), and every other column as read. Labels are 0/1, empty where not known (yet): a transaction not known to be
fraud counts as genuine in the terminal risk features, as a bank's own records would have it.

Other columns are never features unless named in ``extra_features`` (numeric columns passed
through unchanged); ids and anything whose name says it is derived from the label (fraud,
scenario, chargeback, dispute) are refused there by name: they would leak the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import ConfigError, DataError, first_line, validate_features

from .features import DEFAULT_DELAY_DAYS, DEFAULT_WINDOWS, SECONDS_PER_DAY, FeatureSettings, engineer
from .files import Paths, data_files, read_table

DAY_COLUMN = "TX_TIME_DAYS"  # days since the log's first date: the per-day metrics' clock, never a feature
FEATURE_BLOCK_ROWS = 2_000_000  # rows whose features are computed at once (plus their history)
LABEL_WORDS = ("FRAUD", "SCENARIO", "CHARGEBACK", "DISPUTE")
_ID_NAME = re.compile(r"(?i:(?:^|_)id)$|[a-z0-9]Id$")  # TRANSACTION_ID, id, transactionId
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class RawFormat:
    """How a raw transaction log is read and turned into model inputs."""

    time: str = "TX_DATETIME"
    card: str = "CUSTOMER_ID"
    terminal: str = "TERMINAL_ID"
    amount: str = "TX_AMOUNT"
    label: str = "TX_FRAUD"
    time_format: str | None = None  # strftime layout of text times; None: ISO 8601
    features: FeatureSettings = field(default_factory=FeatureSettings)
    extra_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys = list(self.key_columns.values())
        if len(set(keys)) != len(keys):
            raise ConfigError(f"the log's time, card, terminal, amount and label columns must all differ, got {keys}")
        object.__setattr__(self, "extra_features", tuple(self.extra_features))
        for name in self.extra_features:
            reason = self.never_a_feature(name) or self._taken(name)
            if reason:
                raise ConfigError(f"extra feature {name!r} is refused: {reason}")

    @property
    def key_columns(self) -> dict[str, str]:
        return {"time": self.time, "card": self.card, "terminal": self.terminal, "amount": self.amount, "label": self.label}

    @property
    def model_inputs(self) -> list[str]:
        """The model's input columns, in order: the engineered features, then the extra ones."""
        return [*self.features.names, *self.extra_features]

    def never_a_feature(self, name: str) -> str | None:
        """Why a column may never be a model input (None if it may)."""
        roles = {self.time: "the time", self.card: "the card id", self.terminal: "the terminal id", self.label: "the label"}
        if name in roles:
            return f"it is {roles[name]} column"
        upper = name.upper()
        word = next((w for w in (self.label.upper(), *LABEL_WORDS) if w in upper), None)
        if word:
            return f"label-derived (its name contains {word!r})"
        if _ID_NAME.search(name):
            return "an id"
        return None

    def _taken(self, name: str) -> str | None:
        if name == self.amount:
            return "the amount is already the feature TX_AMOUNT"
        if name in self.features.names or name == DAY_COLUMN:
            return "a computed column has that name"
        return None

    def column_roles(self, columns: Sequence[str]) -> dict[str, str]:
        """What each column of a log is to the model: reported in the lineage of every run."""
        keys = {v: k for k, v in self.key_columns.items()}
        roles = {}
        for col in columns:
            if col in keys:
                roles[col] = "the feature TX_AMOUNT" if keys[col] == "amount" else f"{keys[col]} (not a feature)"
            elif col in self.extra_features:
                roles[col] = "extra feature"
            elif col == DAY_COLUMN:
                roles[col] = "recomputed from the time column (not a feature)"
            else:
                reason = self.never_a_feature(col)
                roles[col] = f"excluded: {reason}" if reason else "not a feature (name it in extra_features to use it)"
        return roles

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = {"windows": list(self.features.windows), "delay_days": self.features.delay_days}
        out["extra_features"] = list(self.extra_features)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RawFormat:
        data = dict(data)
        features = data.pop("features", {})
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__ if f != "features"})
        if unknown:
            raise ConfigError(f"raw format settings: unknown field(s) {unknown}")
        windows = tuple(features.get("windows", DEFAULT_WINDOWS))
        settings = FeatureSettings(windows, features.get("delay_days", DEFAULT_DELAY_DAYS))
        return cls(**data, features=settings)

    @classmethod
    def from_json(cls, text: str) -> RawFormat:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"raw format settings are not JSON ({first_line(exc)})") from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class TransactionLog:
    """Every column of the log's files, rows in time order (ties keep the files' order), with
    the parsed time (int64 wall-clock seconds since 1970) and labels (1, 0, NaN not known)."""

    frame: pd.DataFrame
    seconds: np.ndarray
    fraud: np.ndarray
    fmt: RawFormat
    files: tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_frames(cls, parts: Sequence[tuple[str, pd.DataFrame]], fmt: RawFormat, files: Sequence[Path] = ()) -> TransactionLog:
        """Check and parse each ``(where, frame)`` part, then join them in time order."""
        if not parts:
            raise DataError("the transaction log is empty")
        checked = [_checked(frame, fmt, where) for where, frame in parts]
        frames = _same_id_types([c[0] for c in checked], fmt)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
        nanos = np.concatenate([c[1] for c in checked])
        fraud = np.concatenate([c[2] for c in checked])
        if len(nanos) > 1 and not (nanos[1:] >= nanos[:-1]).all():
            order = np.argsort(nanos, kind="stable")
            frame, nanos, fraud = frame.take(order).reset_index(drop=True), nanos[order], fraud[order]
        return cls(frame, nanos // 1_000_000_000, fraud, fmt, tuple(files))

    @property
    def first_day(self) -> int:
        """The first calendar day, in days since 1970-01-01."""
        return int(self.seconds[0] // SECONDS_PER_DAY)

    def date(self, day: int) -> date:
        """The calendar date of a day index (days since the log's first date)."""
        return _EPOCH + timedelta(days=self.first_day + day)

    def day_index(self) -> np.ndarray:
        """Days since the log's first date, per row (non-decreasing)."""
        return self.seconds // SECONDS_PER_DAY - self.first_day

    def slice(self, start: int, stop: int) -> TransactionLog:
        """Rows ``[start, stop)``: a shorter period of the same log."""
        part = self.frame.iloc[start:stop].reset_index(drop=True)
        return replace(self, frame=part, seconds=self.seconds[start:stop], fraud=self.fraud[start:stop])

    def feature_blocks(self, block_rows: int = FEATURE_BLOCK_ROWS) -> Iterator[tuple[int, int, pd.DataFrame]]:
        """``(start, stop, model inputs of rows [start, stop))`` over the log, block by block.

        Each block is computed with the ``lookback_days`` of history before it, so memory is
        bounded by the block and the history, and the result does not depend on the block
        size (the features of a row depend only on its windows).
        """
        reach = self.fmt.features.lookback_days * SECONDS_PER_DAY
        start = 0
        while start < len(self):
            stop = min(len(self), start + max(1, block_rows))
            first = int(np.searchsorted(self.seconds, self.seconds[start] - reach, side="left"))
            yield start, stop, self._engineer(first, stop).iloc[start - first :].reset_index(drop=True)
            start = stop

    def features(self, block_rows: int = FEATURE_BLOCK_ROWS) -> pd.DataFrame:
        """The model inputs of every row (see :meth:`feature_blocks`)."""
        blocks = [features for _, _, features in self.feature_blocks(block_rows)]
        return pd.concat(blocks, ignore_index=True) if len(blocks) > 1 else blocks[0]

    def _engineer(self, start: int, stop: int) -> pd.DataFrame:
        rows = self.frame.iloc[start:stop]
        fmt = self.fmt
        out = engineer(
            self.seconds[start:stop],
            rows[fmt.card].to_numpy(),
            rows[fmt.terminal].to_numpy(),
            rows[fmt.amount].to_numpy(dtype=np.float64),
            self.fraud[start:stop],
            fmt.features,
        )
        for name in fmt.extra_features:
            out[name] = rows[name].to_numpy(dtype=np.float64)
        return out


def read_log(paths: Paths, fmt: RawFormat) -> TransactionLog:
    """Read a log from a CSV/Parquet file, a folder of them, or a list of files and folders."""
    files = data_files(paths)
    return TransactionLog.from_frames([(str(f), read_table(f)) for f in files], fmt, files)


def _checked(frame: pd.DataFrame, fmt: RawFormat, where: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One part of the log, checked: (frame with a float amount, time in ns, labels)."""
    needed = [*fmt.key_columns.values(), *fmt.extra_features]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing} of the transaction log (found: {list(frame.columns)[:12]})")
    clashes = [c for c in frame.columns if c in fmt.features.names and c != fmt.amount]
    if clashes:
        raise DataError(f"{where}: column(s) {clashes} have the names of computed features; rename or drop them")
    for col in (fmt.card, fmt.terminal):
        _no_missing(frame[col], f"{where}: column {col!r}", "id")
    validate_features(frame, list(fmt.extra_features), where)
    nanos = _parse_time(frame[fmt.time], fmt, where)
    amount = _amounts(frame[fmt.amount], fmt.amount, where)
    # the parsed values replace the text: one type per column across files, and the amount is the feature TX_AMOUNT
    parsed = frame.assign(**{fmt.time: nanos.view("datetime64[ns]"), fmt.amount: amount})
    return parsed, nanos, _labels(frame[fmt.label], fmt.label, where)


def _no_missing(series: pd.Series, what: str, kind: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        raise DataError(f"{what} has {int(missing.sum())} missing {kind}(s), first at row {int(np.flatnonzero(missing)[0])}")


def _parse_time(series: pd.Series, fmt: RawFormat, where: str) -> np.ndarray:
    """Wall-clock nanoseconds since 1970 of a date-time column (text or timestamps)."""
    what = f"{where}: time column {fmt.time!r}"
    _no_missing(series, what, "time")
    if pd.api.types.is_datetime64_any_dtype(series):
        when = series
    elif pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise DataError(f"{what} holds numbers (e.g. {series.iloc[0]!r}), not date-times such as '2026-04-01 12:30:00'")
    else:
        text = series.astype(str)
        layout = fmt.time_format or "ISO8601"
        try:
            when = pd.to_datetime(text, format=layout, errors="coerce")
        except (ValueError, TypeError) as exc:  # e.g. mixed time zones in one column
            raise DataError(f"{what}: {first_line(exc)}") from exc
        bad = when.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            expected = f"date-times in the format {fmt.time_format!r}" if fmt.time_format else "ISO 8601 date-times"
            first = f"first {text.iloc[row]!r} at row {row}"
            raise DataError(f"{what} has {int(bad.sum())} value(s) that are not {expected}, {first}")
    if getattr(when.dt, "tz", None) is not None:
        when = when.dt.tz_localize(None)
    return when.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _amounts(series: pd.Series, column: str, where: str) -> np.ndarray:
    """The amount column as float64; text, missing and infinite values are errors."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: amount column {column!r} has {int(bad.sum())} value(s) that are not finite numbers, "
            f"first {series.iloc[row]!r} at row {row}"
        )
    return values


def _labels(series: pd.Series, column: str, where: str) -> np.ndarray:
    """Labels as float64: 1 fraud, 0 genuine, NaN not known (an empty cell); anything else is an error."""
    values = pd.to_numeric(series.astype(float) if pd.api.types.is_bool_dtype(series) else series, errors="coerce")
    bad = (values.notna() & ~values.isin([0, 1])) | (series.notna() & values.isna())
    if bad.any():
        found = sorted(map(str, pd.unique(series[bad])))[:5]
        raise DataError(
            f"{where}: label column {column!r} must be 0/1 (empty where not known yet); found {found} in {int(bad.sum())} row(s)"
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _same_id_types(frames: list[pd.DataFrame], fmt: RawFormat) -> list[pd.DataFrame]:
    """Ids read as numbers from one file and as text from another become text everywhere, so
    card 12 of a CSV and card "12" of a Parquet file are the same card."""
    for col in (fmt.card, fmt.terminal):
        if len({pd.api.types.is_numeric_dtype(f[col]) for f in frames}) > 1:
            frames = [f.assign(**{col: f[col].astype(str)}) for f in frames]
    return frames
