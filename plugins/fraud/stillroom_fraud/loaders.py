"""Fraud datasets as :class:`stillroom.data.DataBundle`: a bank's own table, ULB, the simulator.

A fraud team's data arrives as CSV or Parquet exports of very different quality, so every
loader checks its input and fails with one :class:`~stillroom.errors.DataError` naming the
file and the column at fault, before any model is trained. Splits are time-ordered
whenever a time column exists: fraud patterns drift, and a random split would let the
model train on the future of the transactions it is evaluated on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from stillroom.contract import ConfigError, DataBundle, DataError, validate_features

from .features import DEFAULT_DELAY_DAYS, FEATURES, add_features, split_layout, time_split
from .simulator import GRID_SIZE, simulate

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
ULB_FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
ULB_COLUMNS = ["Time", *ULB_FEATURES, "Class"]
LABEL_COLUMNS = ("TX_FRAUD", "TX_FRAUD_SCENARIO")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a .csv, .csv.gz or .parquet file; any reading problem becomes one DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        reader = pd.read_csv
    elif name.endswith(PARQUET_SUFFIXES):
        reader = pd.read_parquet
    else:
        raise DataError(f"{path}: unknown file extension; expected one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}")
    try:
        frame = reader(path)
    except (ValueError, OSError, EOFError, ImportError) as exc:  # pandas/pyarrow parse errors are ValueError/OSError
        raise DataError(f"{path}: cannot be read as {name.rsplit('.', 1)[-1]} ({type(exc).__name__}: {exc})") from exc
    if len(frame) == 0:
        raise DataError(f"{path}: file has no data rows (columns: {list(frame.columns)[:10]})")
    return frame


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
) -> DataBundle:
    """Any labelled table: time-ordered split when ``time`` is given, else stratified random.

    ``features`` defaults to every column except the label, time, group and ``drop``
    columns, and all of them must be numeric (a text column is an error, not silently
    left out); named features must all exist, be numeric and finite.
    """
    frame = read_table(path)
    where = str(path)
    _require_columns(frame, [c for c in (label, time, group) if c is not None], where)
    if features is None:
        excluded = {label, time, group, *drop}
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
    if label in features:
        raise DataError(f"{where}: label column {label!r} cannot also be a feature")
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
        source=f"file:{path}",
        details=_file_details(Path(path)),
    )


def load_ulb(
    path: str | Path,
    seed: int = 0,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> DataBundle:
    """The ULB / Kaggle credit-card set (``Time, V1..V28, Amount, Class``).

    Adds ``Hour`` (hour of day, a feature) and ``Day`` (``Time // 86400``, the time column
    for per-day metrics) and splits by ``Time``: the last ``test_fraction`` of the rows is
    test. The split is deterministic; ``seed`` is kept for a uniform loader signature.
    """
    frame = read_table(path)
    where = str(path)
    _require_columns(frame, ULB_COLUMNS, where)
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
        source=f"ulb:{path}",
        details=_file_details(Path(path)),
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
    """Simulator + features + leak-free time split, with the first delay gap as unlabelled pool.

    The delay gap after training holds transactions that have happened but whose labels
    are not known yet when the model is trained: exactly what a teacher may label for the
    student, so it becomes ``unlabelled`` (label columns dropped). ``TERMINAL_REGION`` (the
    terminal's grid quadrant) is the subgroup column, ``TX_TIME_DAYS`` the time column.
    """
    sim = simulate(n_customers, n_terminals, n_days, start_date, seed)
    frame = add_features(sim.transactions, delay_days=delay_days)
    frame["TERMINAL_REGION"] = _terminal_region(sim.population.terminals)[frame["TERMINAL_ID"].to_numpy()]
    frame[FEATURES] = frame[FEATURES].astype(np.float64)
    train, validation, test = time_split(
        frame, train_days, delay_days, validation_days, test_days, drop_known_compromised=drop_known_compromised
    )
    days = frame["TX_TIME_DAYS"]
    layout = split_layout(int(days.min()), int(days.max()), train_days, delay_days, validation_days, test_days)
    gap = frame[(days >= layout.train_gap[0]) & (days < layout.train_gap[1])].drop(columns=list(LABEL_COLUMNS))
    params = {"n_customers": n_customers, "n_terminals": n_terminals, "n_days": n_days, "start_date": start_date, "seed": seed}
    details = {
        "simulator": params,
        "delay_days": delay_days,
        "layout_days": {name: list(block) for name, block in vars(layout).items()},
        "drop_known_compromised": drop_known_compromised,
        "transactions": int(len(frame)),
        "fraud_rate": _fraud_rates({"all": frame, "train": train, "validation": validation, "test": test}),
    }
    source = "stillroom_fraud.simulator(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
    return DataBundle(
        train,
        validation,
        test,
        list(FEATURES),
        "TX_FRAUD",
        unlabelled=gap,
        group="TERMINAL_REGION",
        time="TX_TIME_DAYS",
        source=source,
        details=details,
    )


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


def _file_details(path: Path) -> dict[str, Any]:
    """Lineage of a file: its name and content hash (the hash pins the exact export)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"file": str(path), "file_sha256": digest.hexdigest()}


def _terminal_region(terminals: pd.DataFrame) -> np.ndarray:
    """Grid quadrant (NW/NE/SW/SE) of every terminal, indexed by TERMINAL_ID."""
    north = terminals["Y"].to_numpy() >= GRID_SIZE / 2
    east = terminals["X"].to_numpy() >= GRID_SIZE / 2
    return np.char.add(np.where(north, "N", "S"), np.where(east, "E", "W")).astype(object)


def _fraud_rates(frames: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Fraud rate per split, for the lineage record."""
    return {name: float(df["TX_FRAUD"].mean()) if len(df) else 0.0 for name, df in frames.items()}
