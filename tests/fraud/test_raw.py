"""Scoring raw transactions: the features of a raw batch (history + rows to score) are those of
training bit for bit, every input row comes out once, flagged by whether its history was
covered, and bad batches are one line with nothing written."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import DataError
from stillroom_fraud import raw
from stillroom_fraud.batch import make_raw_batch
from stillroom_fraud.features import FeatureSettings
from stillroom_fraud.loaders import load_transactions
from stillroom_fraud.simulator import simulate_transactions
from stillroom_fraud.splits import SplitPlan
from stillroom_fraud.transactions import RawFormat

USER_COLUMNS = {"TX_DATETIME": "ts", "CUSTOMER_ID": "card", "TERMINAL_ID": "merchant", "TX_AMOUNT": "amount", "TX_FRAUD": "y"}
USER = RawFormat(time="ts", card="card", terminal="merchant", amount="amount", label="y")


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return simulate_transactions(n_customers=200, n_terminals=400, n_days=90, seed=6).rename(columns=USER_COLUMNS)


def _scores_input(path: Path | list[Path], chunk_rows: int = 1000, fmt: RawFormat = USER) -> pd.DataFrame:
    reader = raw.reader(raw.format_tags(fmt)[raw.SETTINGS_TAG])  # as a scoring job rebuilds it from the model's run
    chunks = list(reader(path, chunk_rows))
    assert all(len(c) <= chunk_rows for c in chunks)
    return pd.concat(chunks, ignore_index=True)


def test_scoring_features_are_the_training_features_bit_for_bit(log, tmp_path) -> None:
    """Training reads the whole log (Parquet); the nightly batch is its last 80 days as CSV,
    scored in small chunks: every row whose history the batch covers gets identical inputs."""
    training = tmp_path / "training.parquet"
    log.to_parquet(training, index=False)
    bundle = load_transactions(training, USER, SplitPlan(7, train_start=date(2026, 5, 10)))
    trained = pd.concat([bundle.train, bundle.unlabelled, bundle.validation, bundle.test]).set_index("TRANSACTION_ID")
    batch = tmp_path / "batch.csv"
    log[log["ts"] >= pd.Timestamp("2026-04-10")].to_csv(batch, index=False)
    scored = _scores_input(batch, chunk_rows=777).set_index("TRANSACTION_ID")
    both = trained.index.intersection(scored.index[scored[raw.HISTORY_COLUMN]])
    # complete from 2026-05-17 (37 days on): the pool, validation and test periods
    assert len(both) > 5000 and len(both) == (trained["ts"] >= pd.Timestamp("2026-05-17")).sum()
    a = trained.loc[both, USER.model_inputs].to_numpy()
    b = scored.loc[both, USER.model_inputs].to_numpy()
    assert a.dtype == b.dtype == np.float64 and np.array_equal(a.view(np.int64), b.view(np.int64))
    # rows whose windows reach before the batch are flagged, and do differ
    early = trained.index.intersection(scored.index[~scored[raw.HISTORY_COLUMN]])
    assert len(early) and not np.array_equal(trained.loc[early, USER.model_inputs], scored.loc[early, USER.model_inputs])


def test_every_row_comes_out_once_in_time_order_flagged_by_history(log, tmp_path) -> None:
    batch = log[log["ts"] >= pd.Timestamp("2026-05-20")].sample(frac=1.0, random_state=0)  # files need not be sorted
    paths = [tmp_path / "a.parquet", tmp_path / "b.csv"]
    batch.iloc[:9000].to_parquet(paths[0], index=False)
    batch.iloc[9000:].to_csv(paths[1], index=False)
    out = _scores_input(paths, chunk_rows=4096)
    assert len(out) == len(batch) and sorted(out["TRANSACTION_ID"]) == sorted(batch["TRANSACTION_ID"])
    assert out["ts"].is_monotonic_increasing
    assert list(out.columns) == [*batch.columns, *USER.model_inputs, raw.HISTORY_COLUMN]
    first_complete = pd.Timestamp("2026-05-20") + pd.Timedelta(days=37)
    np.testing.assert_array_equal(out[raw.HISTORY_COLUMN], out["ts"] >= first_complete)
    assert np.isfinite(out[USER.model_inputs].to_numpy()).all()


def test_the_format_recorded_with_a_model_decides_the_inputs(log, tmp_path) -> None:
    path = tmp_path / "batch.parquet"
    log.head(3000).to_parquet(path, index=False)
    short = replace(USER, features=FeatureSettings((1, 3), 2))
    tags = raw.format_tags(short)
    assert tags[raw.FORMAT_TAG] == "fraud.transactions" and json.loads(tags[raw.SETTINGS_TAG])["features"]["windows"] == [1, 3]
    out = _scores_input(path, fmt=short)
    assert "CUSTOMER_ID_NB_TX_3DAY_WINDOW" in out.columns and "CUSTOMER_ID_NB_TX_30DAY_WINDOW" not in out.columns


def test_a_nightly_batch_with_unknown_recent_labels_scores(tmp_path) -> None:
    batch = make_raw_batch(days=2, seed=3, n_customers=150, n_terminals=300)
    assert batch["TX_FRAUD"].isna().any() and batch["TX_FRAUD"].notna().any()
    path = tmp_path / "nightly.csv"
    batch.to_csv(path, index=False)
    out = _scores_input(path, chunk_rows=50_000, fmt=RawFormat())
    assert len(out) == len(batch)
    assert out.loc[out[raw.HISTORY_COLUMN], "TX_DATETIME"].dt.date.nunique() == 2  # the two days to score


def test_a_batch_without_any_history_label_is_refused(tmp_path) -> None:
    batch = make_raw_batch(days=1, seed=3, n_customers=100, n_terminals=200).assign(TX_FRAUD=np.nan)
    path = tmp_path / "nightly.parquet"
    batch.to_parquet(path, index=False)
    with pytest.raises(DataError, match="label column 'TX_FRAUD' is empty on all .* older than the 7-day label delay"):
        _scores_input(path, fmt=RawFormat())


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        raw.main(args)
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().out


def test_the_cli_writes_model_inputs_for_stillroom_score(log, tmp_path, capsys) -> None:
    path, config = tmp_path / "batch.csv", tmp_path / "run.yaml"
    log.tail(5000).to_csv(path, index=False)
    columns = "".join(f"      {k}: {v}\n" for k, v in USER.key_columns.items())
    config.write_text(f"data:\n  dataset: fraud.transactions\n  path: unused.parquet\n  transactions:\n    columns:\n{columns}")
    out = tmp_path / "inputs" / "features.parquet"
    keep = ["--keep", "TRANSACTION_ID", "--keep", "card"]
    code, text = _cli([str(path), str(out), "--config", str(config), "--chunk-rows", "1500", *keep], capsys)
    assert code == 0 and "5,000 transactions" in text
    written = pd.read_parquet(out)
    assert list(written.columns) == ["TRANSACTION_ID", "card", *USER.model_inputs, raw.HISTORY_COLUMN]
    assert len(written) == 5000 and written[raw.HISTORY_COLUMN].dtype == bool
    csv = tmp_path / "features.csv"
    assert _cli([str(path), str(csv), "--config", str(config)], capsys)[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(csv)[USER.model_inputs], written[USER.model_inputs], check_dtype=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["merchant"]), r"missing column\(s\) \['merchant'\]"),
        (lambda f: f.assign(ts=f["ts"].astype(str).mask(f.index % 500 == 7, "06/29/26 noon")), "not ISO 8601 date-times"),
        (lambda f: f.drop(columns=["TRANSACTION_ID"]), r"no column\(s\) \['TRANSACTION_ID'\] to keep"),
    ],
    ids=["missing-column", "bad-timestamps", "missing-kept-column"],
)
def test_the_cli_refuses_a_bad_batch_in_one_line_and_writes_nothing(log, tmp_path, capsys, change, message) -> None:
    path, out = tmp_path / "batch.csv", tmp_path / "features.parquet"
    change(log.tail(3000)).to_csv(path, index=False)
    columns = [f"data.transactions.columns.{k}={v}" for k, v in USER.key_columns.items()]
    settings = [*columns, "data.dataset=fraud.transactions", "data.path=x"]
    args = [str(path), str(out), "--keep", "TRANSACTION_ID", *[a for s in settings for a in ("--set", s)]]
    code, err = _cli(args, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # progress lines may precede it
    assert code == 2 and len(errors) == 1 and err.endswith(errors[0] + "\n")
    assert pd.Series(errors).str.contains(message).all(), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]
