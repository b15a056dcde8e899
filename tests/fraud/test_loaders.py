"""Loaders: good files become valid bundles, every bad input is one DataError naming the problem."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import ConfigError, DataError
from stillroom.contract.bundle import validate_bundle
from stillroom_fraud.features import FEATURES
from stillroom_fraud.loaders import load_table, load_transactions, load_ulb, read_table, simulated_bundle
from stillroom_fraud.simulator import simulate_transactions
from stillroom_fraud.splits import SplitPlan
from stillroom_fraud.transactions import RawFormat


def _table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ts": np.arange(n)[::-1],  # reverse order: the loader must sort by time
            "amount": rng.gamma(2.0, 30.0, n),
            "velocity": rng.poisson(3, n),
            "flag": rng.random(n) < 0.5,
            "merchant": rng.choice(["a", "b"], n),
            "region": rng.choice(["north", "south"], n),
            "noise": rng.normal(size=n),
            "is_fraud": (np.arange(n) % 10 == 0).astype(int),
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet"])
def test_read_table_formats(tmp_path, name) -> None:
    frame = _table(20)
    _write(frame, tmp_path / name)
    assert read_table(tmp_path / name)["amount"].tolist() == pytest.approx(frame["amount"].tolist())


BAD_FILES = [
    ("missing.csv", None, "file not found"),
    ("empty.csv", b"", "empty"),
    ("header.csv", b"a,b,is_fraud\n", "no data rows"),
    ("data.xlsx", b"whatever", "unknown file extension"),
    ("broken.parquet", b"this is not parquet", "cannot be read"),
    ("broken.csv.gz", b"not gzip at all", "cannot be read"),
    ("truncated.csv.gz", gzip.compress(b"a,b\n1,2\n" * 100, mtime=0)[:30], "cannot be read"),
]


# ids from the file names: test ids must not depend on bytes that could differ between workers
@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_read_table_bad_files(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_table(path)
    assert name in str(info.value)


def test_load_table_with_time_is_time_ordered(tmp_path) -> None:
    path = _write(_table(), tmp_path / "t.csv")
    bundle = load_table(path, label="is_fraud", time="ts", group="region", drop=["merchant"])
    validate_bundle(bundle)
    assert bundle.train["ts"].max() < bundle.validation["ts"].min() <= bundle.validation["ts"].max() < bundle.test["ts"].min()
    assert (len(bundle.train), len(bundle.validation), len(bundle.test)) == (260, 60, 80)
    assert bundle.features == ["amount", "velocity", "flag", "noise"]  # numeric, minus label/time/group
    assert all(dtype == np.float64 for dtype in bundle.X(bundle.train).dtypes)
    assert (bundle.time, bundle.group, bundle.label) == ("ts", "region", "is_fraud")
    assert len(bundle.details["file_sha256"]) == 64 and bundle.source == (tmp_path / "t.csv").resolve().as_uri()


def test_load_table_without_time_is_stratified_and_seeded(tmp_path) -> None:
    path = _write(_table(), tmp_path / "t.parquet")
    first = load_table(path, label="is_fraud", features=["amount", "velocity"], seed=4, drop=["ts"])
    again = load_table(path, label="is_fraud", features=["amount", "velocity"], seed=4)
    other = load_table(path, label="is_fraud", features=["amount", "velocity"], seed=5)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert not first.test.index.equals(other.test.index)
    for part in (first.train, first.validation, first.test):
        assert part["is_fraud"].mean() == pytest.approx(0.1, abs=0.02)
    assert first.features == ["amount", "velocity"]


def test_load_table_drop_removes_default_features(tmp_path) -> None:
    path = _write(_table(), tmp_path / "t.csv")
    assert "noise" not in load_table(path, label="is_fraud", drop=["noise", "ts", "merchant", "region"]).features


def test_load_table_refuses_to_drop_a_text_column_silently(tmp_path) -> None:
    path = _write(_table(), tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"\['merchant'\] are not numeric.*data.drop"):
        load_table(path, label="is_fraud", drop=["ts", "region"])


TEXT = ["merchant", "region"]  # the text columns of _table(), not model inputs


def _bad(frame: pd.DataFrame, column: str, values) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object) if isinstance(values[0], str) else frame[column].astype(float)
    frame.loc[: len(values) - 1, column] = values
    return frame


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (_table(), {"label": "fraud"}, "missing column.*'fraud'"),
        (_table(), {"label": "is_fraud", "time": "when"}, "missing column.*'when'"),
        (_table(), {"label": "is_fraud", "group": "segment"}, "missing column.*'segment'"),
        (_table(), {"label": "is_fraud", "features": ["amount", "mcc", "age"]}, r"missing feature column.*\['mcc', 'age'\]"),
        (_table(), {"label": "is_fraud", "features": ["amount", "merchant"]}, "'merchant' is not numeric"),
        (_table(), {"label": "is_fraud", "features": ["amount", "is_fraud"]}, "cannot also be a feature"),
        (_bad(_table(), "is_fraud", [2, 0, 1]), {"label": "is_fraud", "drop": TEXT}, "'is_fraud' must be binary 0/1.*2"),
        (_bad(_table(), "is_fraud", ["yes", "no"]), {"label": "is_fraud", "drop": TEXT}, "'is_fraud' must be binary"),
        (_bad(_table(), "is_fraud", [np.nan]), {"label": "is_fraud", "drop": TEXT}, "'is_fraud' must be binary.*nan"),
        (_bad(_table(), "amount", [np.nan, np.nan]), {"label": "is_fraud", "drop": TEXT}, "'amount' has 2 NaN/inf"),
        (_bad(_table(), "noise", [np.inf]), {"label": "is_fraud", "drop": TEXT}, "'noise' has 1 NaN/inf"),
    ],
)
def test_load_table_bad_inputs(tmp_path, frame, kwargs, message) -> None:
    path = _write(frame, tmp_path / "bad.csv")
    with pytest.raises(DataError, match=message) as info:
        load_table(path, **kwargs)
    assert "bad.csv" in str(info.value)


def test_load_table_bad_fractions(tmp_path) -> None:
    path = _write(_table(), tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="valid_fraction"):
        load_table(path, label="is_fraud", valid_fraction=0.5, test_fraction=0.6, drop=TEXT)


def _ulb(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 2 * 86_400, n)).round()})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=n)
    frame["Amount"] = rng.gamma(2.0, 40.0, n)
    frame["Class"] = (rng.random(n) < 0.05).astype(int)
    return frame


def test_load_ulb(tmp_path) -> None:
    path = _write(_ulb(), tmp_path / "creditcard.csv")
    bundle = load_ulb(path, seed=0)
    validate_bundle(bundle)
    assert bundle.features == [f"V{i}" for i in range(1, 29)] + ["Amount", "Hour"]
    assert bundle.label == "Class" and bundle.time == "Day"
    assert set(bundle.test["Day"]) <= {0, 1} and bundle.train["Time"].max() <= bundle.test["Time"].min()
    assert bundle.train["Hour"].between(0, 23).all()
    assert (bundle.train["Hour"] == (bundle.train["Time"] // 3600) % 24).all()


def test_load_ulb_missing_column_is_named(tmp_path) -> None:
    path = _write(_ulb().drop(columns=["V5"]), tmp_path / "creditcard.csv")
    with pytest.raises(DataError, match=r"creditcard.csv: missing column\(s\) \['V5'\]"):
        load_ulb(path, seed=0)


@pytest.fixture(scope="module")
def small_bundle():
    return simulated_bundle(n_customers=200, n_terminals=400, n_days=80, seed=2, train_days=14)


def test_simulated_bundle_is_valid_and_documented(small_bundle) -> None:
    bundle = small_bundle
    validate_bundle(bundle)
    assert bundle.features == FEATURES and bundle.label == "TX_FRAUD"
    assert all(dtype == np.float64 for dtype in bundle.X(bundle.test).dtypes)
    assert bundle.time == "TX_TIME_DAYS" and bundle.group == "TERMINAL_REGION"
    for frame in bundle.splits().values():
        assert {"CUSTOMER_ID", "TX_TIME_DAYS", "TERMINAL_REGION"} <= set(frame.columns)
        assert set(frame["TERMINAL_REGION"]) <= {"NE", "NW", "SE", "SW"}
    assert bundle.source.startswith("stillroom_fraud.simulator(n_customers=200")
    assert bundle.details["simulator"]["seed"] == 2
    assert 0 < bundle.details["fraud_rate"]["all"] < 1


def test_simulated_bundle_unlabelled_pool_is_the_delay_gap(small_bundle) -> None:
    pool = small_bundle.unlabelled
    assert pool is not None and len(pool)
    assert "TX_FRAUD" not in pool.columns and "TX_FRAUD_SCENARIO" not in pool.columns
    assert small_bundle.train["TX_TIME_DAYS"].max() < pool["TX_TIME_DAYS"].min()
    assert pool["TX_TIME_DAYS"].max() < small_bundle.validation["TX_TIME_DAYS"].min()
    assert pool["TX_TIME_DAYS"].nunique() == 7


# --------------------------------------------------------------------------- fraud.transactions

USER_COLUMNS = {"TX_DATETIME": "ts", "CUSTOMER_ID": "card", "TERMINAL_ID": "merchant", "TX_AMOUNT": "amount"}
USER = RawFormat(time="ts", card="card", terminal="merchant", amount="amount", label="TX_FRAUD")


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """The simulator's transactions as a bank's daily Parquet exports, in its own column names."""
    folder = tmp_path_factory.mktemp("exports")
    tx = simulate_transactions(n_customers=200, n_terminals=400, n_days=80, seed=2).rename(columns=USER_COLUMNS)
    for day, part in tx.groupby(tx["ts"].dt.date):
        part.to_parquet(folder / f"{day}.parquet", index=False)
    return folder


def test_transactions_split_on_calendar_dates_with_the_delay_as_pool(exports) -> None:
    plan = SplitPlan(train_days=7, validation_days=7, test_days=7, train_start=date(2026, 5, 15))
    bundle = load_transactions(exports, USER, plan)
    validate_bundle(bundle)
    dates = {name: (part["ts"].dt.date.min(), part["ts"].dt.date.max()) for name, part in bundle.splits().items()}
    assert dates["train"] == (date(2026, 5, 15), date(2026, 5, 21))
    assert dates["unlabelled"] == (date(2026, 5, 22), date(2026, 5, 28))
    assert dates["validation"] == (date(2026, 5, 29), date(2026, 6, 4))
    assert dates["test"] == (date(2026, 6, 12), date(2026, 6, 18))
    assert bundle.features == FEATURES and bundle.label == "TX_FRAUD" and bundle.time == "TX_TIME_DAYS"
    assert not {"TX_FRAUD", "TX_FRAUD_SCENARIO"} & set(bundle.unlabelled.columns)
    details = bundle.details
    assert details["card_column"] == "card" and details["raw_format"]["card"] == "card"
    assert details["columns"]["TX_FRAUD_SCENARIO"].startswith("excluded: label-derived")
    assert details["columns"]["TRANSACTION_ID"] == "excluded: an id"
    assert details["layout_dates"]["test"] == ["2026-06-12", "2026-06-18"]
    assert len(details["files"]) == 80 and all(len(f["file_sha256"]) == 64 for f in details["files"])
    assert bundle.source == exports.resolve().as_uri()
    # the handbook's protocol: no test card already known to be compromised
    frauds = bundle.train.loc[bundle.train["TX_FRAUD"] == 1, "card"]
    assert len(frauds) and not set(frauds) & set(bundle.test["card"])


def test_a_raw_log_and_the_simulator_give_the_same_bundle(exports, small_bundle) -> None:
    """The simulator hands its transactions to the same path a bank's log takes."""
    start = date.fromisoformat(small_bundle.details["layout_dates"]["train"][0])
    bundle = load_transactions(exports, USER, SplitPlan(14, train_start=start))
    for name, part in small_bundle.splits().items():
        other = bundle.splits()[name]
        np.testing.assert_array_equal(other["TRANSACTION_ID"], part["TRANSACTION_ID"])
        np.testing.assert_array_equal(bundle.X(other).to_numpy(), small_bundle.X(part).to_numpy())


def test_unknown_labels_in_a_labelled_period_are_refused(exports, tmp_path) -> None:
    frames = [pd.read_parquet(f) for f in sorted(exports.glob("*.parquet"))]
    frames[-1] = frames[-1].assign(TX_FRAUD=np.nan)  # the last day's labels are not known yet
    path = tmp_path / "log.parquet"
    pd.concat(frames).to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"transaction\(s\) of the test period have no label"):
        load_transactions(path, USER, SplitPlan(7))
    bundle = load_transactions(path, USER, SplitPlan(7, train_start=date(2026, 5, 15)))  # ends before the last day
    assert bundle.test["TX_FRAUD"].dtype == np.int64


def test_every_dataset_source_is_resolvable_by_mlflow(exports, small_bundle, tmp_path) -> None:
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    ulb = load_ulb(_write(_ulb(), tmp_path / "creditcard.csv"), seed=0)
    table = load_table(_write(_table(), tmp_path / "t.csv"), label="is_fraud", time="ts", drop=TEXT)
    raw = load_transactions(exports, USER, SplitPlan(7))
    for bundle in (small_bundle, ulb, table, raw):
        assert resolve_dataset_source(bundle.source) is not None, bundle.source
    assert ulb.source.startswith("file://") and ulb.details["format"].startswith("ULB")


def test_ulb_with_a_card_column_names_it_for_card_precision(tmp_path) -> None:
    frame = _ulb().assign(card=np.arange(600) % 40)
    bundle = load_ulb(_write(frame, tmp_path / "creditcard.csv"), card="card")
    assert bundle.details["card_column"] == "card" and "card" in bundle.test.columns and "card" not in bundle.features
    with pytest.raises(DataError, match=r"missing column\(s\) \['cardholder'\]"):
        load_ulb(_write(frame, tmp_path / "creditcard.csv"), card="cardholder")
