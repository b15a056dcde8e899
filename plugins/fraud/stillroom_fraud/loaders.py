"""Fraud datasets as :class:`stillroom.data.DataBundle`: a raw transaction log, a bank's own
table of model inputs, ULB, the simulator (whose transactions go through the raw log's path).

A fraud team's data arrives as CSV or Parquet exports of very different quality, so every
loader checks its input and fails with one :class:`~stillroom.errors.DataError` naming the
file and the column at fault, before any model is trained. Splits are time-ordered
whenever a time column exists: fraud patterns drift, and a random split would let the
model train on the future of the transactions it is evaluated on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from stillroom.contract import ConfigError, DataBundle, DataError, console, step, validate_features

from . import splits
from .features import DEFAULT_DELAY_DAYS, FeatureSettings
from .files import Paths, file_details, read_table, source_uri
from .simulator import GRID_SIZE, simulate
from .splits import SplitPlan
from .transactions import DAY_COLUMN, RawFormat, TransactionLog, read_log

ULB_FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
ULB_COLUMNS = ["Time", *ULB_FEATURES, "Class"]
__all__ = ["load_table", "load_transactions", "load_ulb", "read_table", "simulated_bundle", "transactions_bundle"]


def load_table(
    path: str | Path,
    label: str,
    features: Sequence[str] | None = None,
    time: str | None = None,
    group: str | None = None,
    seed: int = 0,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    drop: Sequence[str] = (),
    card: str | None = None,
) -> DataBundle:
    """Any labelled table: time-ordered split when ``time`` is given, else stratified random.

    ``features`` defaults to every column except the label, time, group, card and ``drop``
    columns, and all of them must be numeric (a text column is an error, not silently
    left out); named features must all exist, be numeric and finite. ``card`` names the card
    id column for card precision@k (with ``time``).
    """
    frame = read_table(path)
    where = str(path)
    _require_columns(frame, [c for c in (label, time, group, card) if c is not None], where)
    if features is None:
        excluded = {label, time, group, card, *drop}
        text = [c for c in frame.columns if c not in excluded and not _is_numeric(frame[c])]
        if text:  # a mistyped amount ("12,50") must not silently vanish from the model
            raise DataError(
                f"{where}: column(s) {text} are not numeric (e.g. {frame[text[0]].dtype}); "
                "fix them, or list them under data.drop, or name the features in data.features"
            )
        features = [c for c in frame.columns if c not in excluded]
        if not features:
            raise DataError(f"{where}: no numeric feature column besides {sorted(c for c in excluded if c)}")
    features = list(features)
    _require_columns(frame, features, where, kind="feature")
    if label in features or (card is not None and card in features):
        raise DataError(f"{where}: the {'label' if label in features else 'card'} column cannot also be a feature")
    return _bundle(
        frame,
        label,
        features,
        where,
        seed,
        valid_fraction,
        test_fraction,
        time=time,
        group=group,
        order_by=time,
        source=source_uri(path),
        details=file_details(Path(path)) | {"card_column": card},
    )


def load_ulb(
    path: str | Path,
    seed: int = 0,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    card: str | None = None,
) -> DataBundle:
    """The ULB / Kaggle credit-card set (``Time, V1..V28, Amount, Class``).

    Adds ``Hour`` (hour of day, a feature) and ``Day`` (``Time // 86400``, the time column
    for per-day metrics) and splits by ``Time``: the last ``test_fraction`` of the rows is
    test. The split is deterministic; ``seed`` is kept for a uniform loader signature. The
    public file has no card id; a bank's file in the same format may add one (``card``), which
    enables card precision@k.
    """
    frame = read_table(path)
    where = str(path)
    _require_columns(frame, [*ULB_COLUMNS, *([card] if card else [])], where)
    validate_features(frame, ["Time"], where)
    frame = frame.assign(Hour=(frame["Time"] // 3600) % 24, Day=(frame["Time"] // 86_400).astype(np.int64))
    return _bundle(
        frame,
        "Class",
        [*ULB_FEATURES, "Hour"],
        where,
        seed,
        valid_fraction,
        test_fraction,
        time="Day",
        order_by="Time",
        source=source_uri(path),
        details=file_details(Path(path)) | {"format": "ULB credit-card (Time, V1..V28, Amount, Class)", "card_column": card},
    )


def simulated_bundle(
    n_customers: int = 5000,
    n_terminals: int = 10000,
    n_days: int = 183,
    seed: int = 0,
    delay_days: int = DEFAULT_DELAY_DAYS,
    train_days: int = 56,
    validation_days: int = 7,
    test_days: int = 7,
    start_date: str = "2026-04-01",
    drop_known_compromised: bool = True,
) -> DataBundle:
    """The simulator's transactions as a raw log, through the same path as a real one.

    ``TERMINAL_REGION`` (the terminal's grid quadrant) is added as the subgroup column; the
    layout ends on the last simulated day.
    """
    sim = simulate(n_customers, n_terminals, n_days, start_date, seed)
    raw = sim.transactions.assign(TERMINAL_REGION=_terminal_region(sim.population.terminals)[sim.transactions["TERMINAL_ID"]])
    fmt = RawFormat(features=FeatureSettings(delay_days=delay_days))
    params = {"n_customers": n_customers, "n_terminals": n_terminals, "n_days": n_days, "start_date": start_date, "seed": seed}
    source = "stillroom_fraud.simulator(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
    return transactions_bundle(
        TransactionLog.from_frames([("simulator", raw)], fmt),
        SplitPlan(train_days, validation_days, test_days, drop_known_compromised=drop_known_compromised),
        group="TERMINAL_REGION",
        source=source,
        details={"simulator": params},
    )


def load_transactions(paths: Paths, fmt: RawFormat, plan: SplitPlan, group: str | None = None) -> DataBundle:
    """A raw transaction log from files (see :mod:`stillroom_fraud.transactions`), split by date."""
    log = read_log(paths, fmt)
    details = {"files": [file_details(f) for f in log.files]}
    return transactions_bundle(log, plan, group=group, source=source_uri(paths), details=details)


def transactions_bundle(
    log: TransactionLog, plan: SplitPlan, *, group: str | None, source: str, details: dict[str, Any]
) -> DataBundle:
    """Features + leak-free periods by calendar date, the first delay gap as the unlabelled pool.

    Only the rows the periods and their history need get features. The gap's transactions
    have happened but their labels are not known when the model is trained: exactly what a
    teacher may label for the student, so they become ``unlabelled`` (label and label-derived
    columns dropped).
    """
    fmt, settings = log.fmt, log.fmt.features
    if group is not None and group not in log.frame.columns:
        raise DataError(f"{source}: missing group column {group!r} (found: {list(log.frame.columns)[:12]})")
    all_days = log.day_index()
    periods = splits.layout(plan, settings, log.date(0), log.date(int(all_days[-1])))
    first, stop = np.searchsorted(all_days, [periods.train[0] - settings.lookback_days, periods.test[1]])
    used = log.slice(int(first), int(stop))
    with step(f"features: {len(used):,} transactions ({settings.lookback_days} days of history included)"):
        features = used.features()
    days = all_days[first:stop]
    frame = used.frame.drop(columns=[c for c in features.columns if c in used.frame.columns])
    frame = pd.concat([frame.assign(**{DAY_COLUMN: days, fmt.label: used.fraud}), features], axis=1)
    masks = {name: splits.in_period(days, period) for name, period in periods.periods().items()}
    if plan.drop_known_compromised:
        known = splits.known_compromised(days, frame[fmt.card].to_numpy(), used.fraud, periods.train[0], settings.delay_days)
        masks["validation"] &= ~known
        masks["test"] &= ~known
    parts = {name: _labelled(frame[masks[name]], fmt.label, name, source) for name in ("train", "validation", "test")}
    roles = fmt.column_roles(list(log.frame.columns))
    hidden = [c for c, role in roles.items() if role.startswith("excluded: label-derived") or c == fmt.label]
    pool = frame[masks["train_gap"]].drop(columns=hidden)
    _report_exclusions(roles)
    details = {
        **details,
        "raw_format": fmt.to_dict(),
        "card_column": fmt.card,
        "columns": roles,
        "period": [log.date(0).isoformat(), log.date(int(all_days[-1])).isoformat()],
        "layout_days": {name: list(period) for name, period in periods.periods().items()},
        "layout_dates": periods.dates(log.date(0)),
        "delay_days": settings.delay_days,
        "drop_known_compromised": plan.drop_known_compromised,
        "transactions": len(log),
        "fraud_rate": _fraud_rates({"all": log.fraud, **{k: v[fmt.label].to_numpy() for k, v in parts.items()}}),
    }
    return DataBundle(
        parts["train"],
        parts["validation"],
        parts["test"],
        fmt.model_inputs,
        fmt.label,
        unlabelled=pool,
        group=group,
        time=DAY_COLUMN,
        source=source,
        details=details,
    )


def _labelled(frame: pd.DataFrame, label: str, period: str, source: str) -> pd.DataFrame:
    """A period that is trained on or evaluated needs every label; they become int 0/1."""
    unknown = frame[label].isna().to_numpy()
    if unknown.any():
        day = int(frame[DAY_COLUMN].to_numpy()[unknown][0])
        raise DataError(
            f"{source}: {int(unknown.sum())} transaction(s) of the {period} period have no label "
            f"(first on day {day} of the log); move the split earlier (data.transactions.train_start) "
            "or export the log once the labels are known"
        )
    return frame.astype({label: np.int64})


def _report_exclusions(roles: dict[str, str]) -> None:
    """Say on the console which columns of the log are kept out of the model, and why."""
    excluded = [f"{c} ({role.removeprefix('excluded: ')})" for c, role in roles.items() if role.startswith("excluded")]
    if excluded:
        console.log("never features: " + ", ".join(excluded))


def _bundle(
    frame: pd.DataFrame,
    label: str,
    features: list[str],
    where: str,
    seed: int,
    valid_fraction: float,
    test_fraction: float,
    *,
    time: str | None = None,
    group: str | None = None,
    order_by: str | None = None,
    source: str,
    details: dict[str, Any],
) -> DataBundle:
    """Validate label and features, cast features to float, split, and wrap as a bundle."""
    _check_fractions(valid_fraction, test_fraction)
    validate_features(frame, features, where)
    frame = frame.assign(**{label: _binary_labels(frame[label], label, where)})
    frame[features] = frame[features].astype(np.float64)
    if order_by is not None:
        train, validation, test = _ordered_split(frame, order_by, valid_fraction, test_fraction)
    else:
        train, validation, test = _stratified_split(frame, label, where, seed, valid_fraction, test_fraction)
    details = {
        **details,
        "rows": int(len(frame)),
        "fraud_rate": float(frame[label].mean()),
        "split": "time-ordered" if order_by else f"stratified random (seed={seed})",
    }
    return DataBundle(train, validation, test, features, label, group=group, time=time, source=source, details=details)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], where: str, kind: str = "") -> None:
    """Every named column must exist; the message lists the missing ones and what exists."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        what = f"{kind} column(s)" if kind else "column(s)"
        raise DataError(f"{where}: missing {what} {missing} (found: {list(frame.columns)[:12]})")


def _is_numeric(series: pd.Series) -> bool:
    """Numeric or boolean, the dtypes a model input may have."""
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _binary_labels(series: pd.Series, label: str, where: str) -> pd.Series:
    """The label as int 0/1; anything else (NaN, 2, 'yes') is an error naming the values."""
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() | ~values.isin([0, 1])
    if bad.any():
        found = sorted(map(str, pd.unique(series[bad])))[:5]
        raise DataError(f"{where}: label column {label!r} must be binary 0/1; found {found} in {int(bad.sum())} row(s)")
    return values.astype(np.int64)


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Both held-out parts non-empty, and room left for training."""
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ConfigError(
            f"valid_fraction ({valid_fraction}) and test_fraction ({test_fraction}) must be in (0, 1) with a sum below 1"
        )


def _ordered_split(
    frame: pd.DataFrame, order_by: str, valid_fraction: float, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Earliest rows train, then validation, then the latest rows test."""
    ordered = frame.sort_values(order_by, kind="stable")
    n = len(ordered)
    n_test, n_valid = int(round(n * test_fraction)), int(round(n * valid_fraction))
    cut_valid, cut_test = n - n_test - n_valid, n - n_test
    return ordered.iloc[:cut_valid], ordered.iloc[cut_valid:cut_test], ordered.iloc[cut_test:]


def _stratified_split(
    frame: pd.DataFrame, label: str, where: str, seed: int, valid_fraction: float, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random split keeping the fraud rate equal in every part (reproducible by seed)."""
    try:
        rest, test = train_test_split(frame, test_size=test_fraction, stratify=frame[label], random_state=seed)
        train, validation = train_test_split(
            rest, test_size=valid_fraction / (1 - test_fraction), stratify=rest[label], random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"{where}: cannot split label column {label!r} into stratified parts ({exc})") from exc
    return train, validation, test


def _terminal_region(terminals: pd.DataFrame) -> np.ndarray:
    """Grid quadrant (NW/NE/SW/SE) of every terminal, indexed by TERMINAL_ID."""
    north = terminals["Y"].to_numpy() >= GRID_SIZE / 2
    east = terminals["X"].to_numpy() >= GRID_SIZE / 2
    return np.char.add(np.where(north, "N", "S"), np.where(east, "E", "W")).astype(object)


def _fraud_rates(labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Fraud rate per split (of the known labels), for the lineage record."""
    return {name: float(np.nanmean(values)) if np.isfinite(values).any() else 0.0 for name, values in labels.items()}
