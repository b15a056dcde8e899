"""End to end from a bank's own files: a raw transaction log in its own column names (daily
CSV and Parquet exports) -> ``stillroom distill`` -> the registered student -> a fresh raw
nightly batch (history + days to score, recent labels unknown) -> ``stillroom score --raw``
(the batch computed into the model's inputs by the format the run recorded) on the local engine
and on Spark: one output row per input row, with the documented columns; the same scores as the
two-step job (``python -m stillroom_fraud.raw`` writes the inputs, ``stillroom score`` scores them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stillroom import tracking
from stillroom.cli import app
from stillroom.testing import temporary_store
from stillroom_fraud import raw
from stillroom_fraud.batch import make_raw_batch
from stillroom_fraud.simulator import simulate_transactions
from stillroom_fraud.transactions import RawFormat

from .conftest import SMALL_MODELS

pytestmark = pytest.mark.slow

RENAME = {"TX_DATETIME": "ts", "CUSTOMER_ID": "card", "TERMINAL_ID": "merchant", "TX_AMOUNT": "amount", "TX_FRAUD": "is_fraud"}
COLUMNS = {"time": "ts", "card": "card", "terminal": "merchant", "amount": "amount", "label": "is_fraud"}
SETTINGS = [
    "data.dataset=fraud.transactions",
    *[f"data.transactions.columns.{k}={v}" for k, v in COLUMNS.items()],
    "data.transactions.train_start=2026-05-08",
    "data.transactions.train_days=14",
    *SMALL_MODELS,
]
OUTPUT = ["TRANSACTION_ID", raw.HISTORY_COLUMN, "score"]


@dataclass(frozen=True)
class Trained:
    root: Path
    run_id: str
    model_uri: str


def _exports(frame: pd.DataFrame, folder: Path) -> Path:
    """One file per day, CSV and Parquet in turn, in the bank's column names."""
    folder.mkdir()
    for day, part in frame.rename(columns=RENAME).groupby(frame["TX_DATETIME"].dt.date):
        if day.day % 2:
            part.to_csv(folder / f"transactions-{day}.csv", index=False)
        else:
            part.to_parquet(folder / f"transactions-{day}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    root = tmp_path_factory.mktemp("raw-e2e")
    with temporary_store(root):
        log = simulate_transactions(n_customers=300, n_terminals=600, n_days=80, seed=21)
        exports = _exports(log.drop(columns=["TX_TIME_SECONDS", "TX_TIME_DAYS"]), root / "exports")
        args = ["distill", "fraud", "--set", f"data.path={exports}", *[a for s in SETTINGS for a in ("--set", s)]]
        result = CliRunner().invoke(app, args)
        assert result.exit_code in (0, 3), result.output  # 3: the gate failed, the student is still registered
        import mlflow

        runs = mlflow.search_runs(experiment_names=["stillroom-fraud"], output_format="list")
        yield Trained(root, runs[0].info.run_id, "models:/fraud-student/1")


@pytest.fixture(scope="module")
def nightly(trained: Trained) -> tuple[Path, pd.DataFrame]:
    """A fresh batch: 37 days of history and 2 days to score, labels unknown for the last week,
    as daily CSV files in the bank's layout (another seed: new cards, new terminals)."""
    batch = make_raw_batch(days=2, seed=99, n_customers=300, n_terminals=600).rename(columns=RENAME)
    folder = trained.root / "nightly"
    folder.mkdir()
    for day, part in batch.groupby(batch["ts"].dt.date):
        part.to_csv(folder / f"{day}.csv", index=False)
    return folder, batch


@pytest.fixture(scope="module")
def model_inputs(trained: Trained, nightly: tuple[Path, pd.DataFrame]) -> Path:
    """The batch through the reader the model's run recorded (what `stillroom score --raw` wires)."""
    with temporary_store(trained.root):
        tags = tracking.run_record(trained.run_id).tags
    assert tags[raw.FORMAT_TAG] == "fraud.transactions"
    assert RawFormat.from_json(tags[raw.SETTINGS_TAG]).key_columns == COLUMNS
    out = trained.root / "nightly-inputs.parquet"
    fmt = RawFormat.from_json(tags[raw.SETTINGS_TAG])
    written = raw.write_features(nightly[0], out, fmt, keep=["TRANSACTION_ID"], chunk_rows=2000)
    assert written == len(nightly[1])
    return out


def _score(trained: Trained, inputs: Path, out: Path, *options: str) -> pd.DataFrame:
    args = ["score", trained.model_uri, str(inputs), str(out), "--no-progress", "--passthrough", "TRANSACTION_ID", *options]
    with temporary_store(trained.root):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


def test_the_run_records_the_raw_log_it_learnt_from(trained: Trained) -> None:
    with temporary_store(trained.root):
        record = tracking.run_record(trained.run_id)
        tags = tracking.model_version_tags("fraud-student", "1")
    assert tags["stillroom.run_id"] == trained.run_id
    assert record.params["data.dataset"] == "fraud.transactions"
    assert record.params["data.transactions.columns.card"] == "card"
    assert "student.card_precision_at_100" in record.metrics  # the card column came from the config
    contexts = {d["context"] for d in record.datasets}
    assert {"train", "validation", "test", "unlabelled", "transfer"} <= contexts


def test_raw_batch_scores_on_the_local_engine_one_row_per_input_row(
    trained: Trained, nightly: tuple[Path, pd.DataFrame], model_inputs: Path
) -> None:
    scores = _score(trained, nightly[0], trained.root / "scores.parquet", "--raw")
    batch = nightly[1]
    assert list(scores.columns) == OUTPUT and len(scores) == len(batch)
    assert sorted(scores["TRANSACTION_ID"].astype(int)) == sorted(batch["TRANSACTION_ID"])
    assert scores["score"].between(0, 1).all()
    days = pd.to_datetime(batch.set_index("TRANSACTION_ID").loc[scores["TRANSACTION_ID"].astype(int), "ts"]).dt.date
    scored_days = sorted(set(days[scores[raw.HISTORY_COLUMN].to_numpy()]))
    assert [d.isoformat() for d in scored_days] == ["2026-05-08", "2026-05-09"]  # the two days after the history
    two_step = _score(trained, model_inputs, trained.root / "two-step.parquet", "--passthrough", raw.HISTORY_COLUMN)
    assert two_step["TRANSACTION_ID"].tolist() == scores["TRANSACTION_ID"].tolist()
    np.testing.assert_array_equal(two_step["score"], scores["score"])  # one feature code path, bit for bit


def test_raw_batch_scores_on_spark_like_the_local_engine(trained: Trained, nightly: tuple[Path, pd.DataFrame]) -> None:
    local = _score(trained, nightly[0], trained.root / "local.parquet", "--raw")
    spark = _score(trained, nightly[0], trained.root / "spark.parquet", "--raw", "--engine", "spark", "--master", "local[2]")
    assert list(spark.columns) == OUTPUT and len(spark) == len(local)
    assert spark["TRANSACTION_ID"].tolist() == local["TRANSACTION_ID"].tolist()
    assert spark[raw.HISTORY_COLUMN].tolist() == local[raw.HISTORY_COLUMN].tolist()
    np.testing.assert_allclose(spark["score"], local["score"], rtol=0, atol=1e-6)
    assert sorted(p.name for p in trained.root.iterdir() if p.name.startswith(".")) == []  # no temp inputs left behind


def test_raw_needs_a_model_trained_from_raw_records(trained: Trained, nightly: tuple[Path, pd.DataFrame]) -> None:
    """A model without a recorded input format refuses --raw in one line, writing nothing."""
    import mlflow

    with temporary_store(trained.root):
        client = mlflow.MlflowClient()
        client.set_tag(trained.run_id, raw.FORMAT_TAG, "")  # as a run trained from a feature table records nothing
        try:
            out = trained.root / "refused.parquet"
            result = CliRunner().invoke(app, ["score", trained.model_uri, str(nightly[0]), str(out), "--raw", "--no-progress"])
        finally:
            client.set_tag(trained.run_id, raw.FORMAT_TAG, raw.FORMAT_NAME)
    assert result.exit_code == 2 and "was not trained from raw records" in result.output
    assert not out.exists()
