"""Loaders: good files become valid bundles, every bad input is one DataError naming the problem."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.contract.bundle import validate_bundle
from stillroom.errors import ConfigError, DataError
from stillroom_fraud.features import FEATURES
from stillroom_fraud.loaders import load_table, load_ulb, read_table, simulated_bundle


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
    assert len(bundle.details["file_sha256"]) == 64 and bundle.source.endswith("t.csv")


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
    return simulated_bundle(n_customers=200, n_terminals=400, n_days=75, seed=2, train_days=14)


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
