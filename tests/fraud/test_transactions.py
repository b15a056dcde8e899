"""A raw transaction log in the user's own layout: named columns, many files of either format,
one clear DataError per bad input, and columns that may never be features refused by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import ConfigError, DataError
from stillroom_fraud.features import FeatureSettings
from stillroom_fraud.simulator import simulate_transactions
from stillroom_fraud.transactions import RawFormat, TransactionLog, read_log

USER = RawFormat(time="ts", card="card", terminal="merchant", amount="amount", label="is_fraud")
RENAME = {"TX_DATETIME": "ts", "CUSTOMER_ID": "card", "TERMINAL_ID": "merchant", "TX_AMOUNT": "amount", "TX_FRAUD": "is_fraud"}


@pytest.fixture(scope="module")
def user_log() -> pd.DataFrame:
    """Simulated transactions in a bank's own column names, without the simulator's extras."""
    tx = simulate_transactions(n_customers=150, n_terminals=300, n_days=45, seed=8)
    return tx.drop(columns=["TX_TIME_SECONDS", "TX_TIME_DAYS"]).rename(columns=RENAME)


def _daily_files(frame: pd.DataFrame, folder: Path) -> Path:
    """One file per day, alternating CSV and Parquet, as a bank's daily exports."""
    folder.mkdir(parents=True, exist_ok=True)
    for day, part in frame.groupby(frame["ts"].dt.date):
        if day.day % 2:
            part.to_csv(folder / f"tx-{day}.csv", index=False)
        else:
            part.to_parquet(folder / f"tx-{day}.parquet", index=False)
    return folder


def test_a_folder_of_mixed_daily_files_reads_as_one_log(user_log, tmp_path) -> None:
    folder = _daily_files(user_log, tmp_path / "exports")
    (folder / "_SUCCESS").write_text("")  # writers' markers are not data
    log = read_log(folder, USER)
    assert len(log) == len(user_log) and len(log.files) == user_log["ts"].dt.date.nunique()
    np.testing.assert_array_equal(log.frame["TRANSACTION_ID"], user_log["TRANSACTION_ID"])
    assert pd.api.types.is_datetime64_dtype(log.frame["ts"]) and (log.frame["ts"] == user_log["ts"]).all()
    np.testing.assert_array_equal(log.fraud, user_log["is_fraud"].to_numpy(dtype=float))
    assert log.date(0).isoformat() == "2026-04-01" and int(log.day_index()[-1]) == 44
    same = read_log(sorted(folder.glob("tx-*")), USER)  # a list of files is the same log
    np.testing.assert_array_equal(same.features().to_numpy(), log.features().to_numpy())


def test_rows_are_put_in_time_order_and_ties_keep_the_files_order(user_log) -> None:
    shuffled = user_log.sample(frac=1.0, random_state=3)
    log = TransactionLog.from_frames([("shuffled", shuffled)], USER)
    assert np.all(np.diff(log.seconds) >= 0)
    ordered = TransactionLog.from_frames([("ordered", user_log)], USER)
    unique = ~user_log.duplicated(["card", "ts"], keep=False).to_numpy()
    by_id = log.features().set_axis(log.frame["TRANSACTION_ID"]).loc[user_log["TRANSACTION_ID"]]
    np.testing.assert_array_equal(by_id.to_numpy()[unique], ordered.features().to_numpy()[unique])


def test_ids_read_as_numbers_and_as_text_are_the_same_card(user_log) -> None:
    numbers, text = user_log.iloc[:3000], user_log.iloc[3000:].astype({"card": str, "merchant": str})
    mixed = TransactionLog.from_frames([("a.parquet", numbers), ("b.csv", text)], USER)
    plain = TransactionLog.from_frames([("all", user_log)], USER)
    assert mixed.frame["card"].map(type).eq(str).all()
    np.testing.assert_array_equal(mixed.features().to_numpy(), plain.features().to_numpy())


def test_time_zones_text_formats_and_empty_labels(user_log) -> None:
    part = user_log.head(400)
    plain = TransactionLog.from_frames([("plain", part)], USER)
    zoned = part.assign(ts=part["ts"].dt.tz_localize("Europe/Brussels"))  # same wall clock, a zone attached
    np.testing.assert_array_equal(TransactionLog.from_frames([("zoned", zoned)], USER).seconds, plain.seconds)
    text = part.assign(ts=part["ts"].dt.strftime("%d/%m/%Y %H:%M:%S"))
    custom = replace(USER, time_format="%d/%m/%Y %H:%M:%S")
    np.testing.assert_array_equal(TransactionLog.from_frames([("text", text)], custom).seconds, plain.seconds)
    unknown = part.assign(is_fraud=part["is_fraud"].astype("Int64").mask(part.index >= 300))
    log = TransactionLog.from_frames([("recent", unknown)], USER)
    assert np.isnan(log.fraud[300:]).all() and not np.isnan(log.fraud[:300]).any()


def _with(frame: pd.DataFrame, column: str, values: list) -> pd.DataFrame:
    frame = frame.head(50).copy()
    frame[column] = frame[column].astype(object)
    frame.loc[frame.index[: len(values)], column] = values
    return frame


BAD = [
    (lambda f: f.drop(columns=["merchant"]), r"missing column\(s\) \['merchant'\] of the transaction log"),
    (lambda f: _with(f, "ts", ["2026-04-01 10:00:00", "yesterday"]), r"not ISO 8601 date-times, first 'yesterday' at row 1"),
    (lambda f: f.assign(ts=np.arange(len(f))), "holds numbers"),
    (lambda f: _with(f, "ts", [None]), "missing time"),
    (lambda f: _with(f, "card", [None, None]), "column 'card' has 2 missing id"),
    (lambda f: _with(f, "amount", ["12,50"]), r"'amount' has 1 value\(s\) that are not finite numbers, first '12,50'"),
    (lambda f: _with(f, "amount", [np.inf]), "not finite numbers"),
    (lambda f: _with(f, "is_fraud", [2, "yes"]), r"label column 'is_fraud' must be 0/1.*\['2', 'yes'\]"),
    (lambda f: f.assign(TX_DURING_NIGHT=1), "have the names of computed features"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split()[0].strip("r'\\") for _, m in BAD])
def test_bad_logs_are_one_data_error_naming_the_file(user_log, tmp_path, change, message) -> None:
    path = tmp_path / "day.csv"
    change(user_log).to_csv(path, index=False)
    with pytest.raises(DataError, match=message) as info:
        read_log(path, USER)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_folder_without_data_files_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("nothing")
    with pytest.raises(DataError, match="holds no .csv"):
        read_log(tmp_path, USER)


def test_format_round_trips_through_json() -> None:
    fmt = RawFormat(time="ts", label="y", features=FeatureSettings((2, 14), 5), extra_features=("mcc_risk",))
    assert RawFormat.from_json(fmt.to_json()) == fmt
    assert fmt.model_inputs[-1] == "mcc_risk" and len(fmt.model_inputs) == 3 + 5 * 2 + 1
    with pytest.raises(ConfigError, match="unknown field"):
        RawFormat.from_dict({**fmt.to_dict(), "windows": [1]})
    with pytest.raises(ConfigError, match="must all differ"):
        RawFormat(card="id", terminal="id")


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        ("TX_FRAUD_SCENARIO", "label-derived"),
        ("chargeback_date", "label-derived"),
        ("is_fraud_confirmed", "label-derived"),
        ("TRANSACTION_ID", "an id"),
        ("deviceId", "an id"),
        ("CUSTOMER_ID", "card id column"),
        ("TX_AMOUNT", "already the feature TX_AMOUNT"),
        ("TERMINAL_ID_RISK_7DAY_WINDOW", "computed column"),
    ],
)
def test_columns_that_may_never_be_features_are_refused_by_name(column, reason) -> None:
    with pytest.raises(ConfigError, match=f"extra feature '{column}' is refused: .*{reason}"):
        RawFormat(label="is_fraud" if column == "is_fraud_confirmed" else "TX_FRAUD", extra_features=(column,))


def test_every_column_gets_a_reported_role() -> None:
    fmt = RawFormat(extra_features=("mcc_risk",))
    roles = fmt.column_roles(["TRANSACTION_ID", "TX_DATETIME", "TX_AMOUNT", "TX_FRAUD", "TX_FRAUD_SCENARIO", "mcc_risk", "note"])
    assert roles == {
        "TRANSACTION_ID": "excluded: an id",
        "TX_DATETIME": "time (not a feature)",
        "TX_AMOUNT": "the feature TX_AMOUNT",
        "TX_FRAUD": "label (not a feature)",
        "TX_FRAUD_SCENARIO": "excluded: label-derived (its name contains 'TX_FRAUD')",
        "mcc_risk": "extra feature",
        "note": "not a feature (name it in extra_features to use it)",
    }


def test_extra_features_are_passed_through_as_model_inputs(user_log) -> None:
    frame = user_log.assign(mcc_risk=np.linspace(0, 1, len(user_log)))
    fmt = replace(USER, extra_features=("mcc_risk",))
    features = TransactionLog.from_frames([("log", frame)], fmt).features()
    assert list(features.columns) == fmt.model_inputs
    np.testing.assert_array_equal(features["mcc_risk"], frame["mcc_risk"])
    with pytest.raises(DataError, match="'mcc_risk' is not numeric"):
        TransactionLog.from_frames([("log", frame.assign(mcc_risk="high"))], fmt)
