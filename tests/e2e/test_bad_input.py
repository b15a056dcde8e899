"""Every user mistake ends in one clear message, exit code 2, and nothing run or registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stillroom.cli import app

runner = CliRunner()


@pytest.fixture
def store(tracking_store: str) -> str:
    return tracking_store


def _nothing_written(uri: str) -> None:
    import mlflow

    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    assert mlflow.MlflowClient().search_registered_models() == []


def _fails(args: list[str], message: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    return result.output


def _table(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def _good_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["is_fraud"] = (frame["a"] + rng.normal(size=n) > 1.5).astype(int)
    return frame


def _table_args(path: str) -> list[str]:
    return ["distill", "fraud", "--set", "data.dataset=fraud.table", "--set", f"data.path={path}", "--set", "data.label=is_fraud"]


def test_malformed_config(store: str, tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("recipe: [alpha: 0.5\n")
    _fails(["distill", "fraud", "--config", str(bad)], "is not valid YAML")
    _nothing_written(store)


def test_unknown_config_field(store: str, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("recipe:\n  alpah: 0.5\n")
    _fails(["distill", "fraud", "--config", str(cfg)], "unknown config field 'recipe.alpah'")
    _fails(["distill", "fraud", "--set", "recipe.alpha=2"], "invalid config field 'recipe.alpha'")
    _nothing_written(store)


def test_unknown_student_setting_fails_before_any_training(store: str) -> None:
    # the students are built before the data and the teacher, so not even a teacher run is left behind
    _fails(["distill", "fraud", "--set", "student.params.n_leaves=3"], "unknown config field 'student.params.n_leaves'")
    _nothing_written(store)


def test_missing_label_column(store: str, tmp_path: Path) -> None:
    path = _table(tmp_path / "t.csv", _good_frame().drop(columns="is_fraud"))
    _fails(_table_args(path), "is_fraud")
    _nothing_written(store)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_in_features(store: str, tmp_path: Path, value: float) -> None:
    frame = _good_frame()
    frame.loc[17, "b"] = value
    _fails(_table_args(_table(tmp_path / "t.csv", frame)), "'b'")
    _nothing_written(store)


def test_non_numeric_column(store: str, tmp_path: Path) -> None:
    frame = _good_frame()
    frame["b"] = frame["b"].astype(str)
    frame.loc[3, "b"] = "twelve"
    _fails(_table_args(_table(tmp_path / "t.csv", frame)) + ["--set", "data.features=[a, b]"], "'b'")
    _nothing_written(store)


def test_empty_file(store: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _fails(_table_args(str(empty)), "empty")
    _nothing_written(store)


def test_unknown_vertical(store: str) -> None:
    _fails(["distill", "bakery"], "unknown task 'bakery'")
    _nothing_written(store)


def test_unknown_teacher_model_uri(store: str) -> None:
    _fails(
        ["distill", "fraud", "--set", "teacher.name=null", "--set", "teacher.uri=models:/no-such-teacher@champion"],
        "no-such-teacher",
    )
    _nothing_written(store)


def test_unknown_model_uri_for_scoring(store: str, tmp_path: Path) -> None:
    src = _table(tmp_path / "in.csv", _good_frame())
    out = tmp_path / "out.csv"
    _fails(["score", "models:/nope@champion", src, str(out)], "unknown model models:/nope@champion")
    _fails(["score", "s3://bucket/model", src, str(out)], "is not of the form")
    assert not out.exists()


def test_unreachable_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _fails(["distill", "fraud", "--set", "run.tracking_uri=http://127.0.0.1:9"], "unreachable")
    _fails(
        ["promote", "m", "--version", "1", "--approver", "a", "--reason", "r", "--tracking-uri", "http://127.0.0.1:9"],
        "unreachable",
    )


def _raw_log(folder: Path, change: Any = None) -> list[str]:
    """A raw transaction log in a bank's own column names (daily CSV files) and the distill
    arguments that name its columns."""
    from stillroom_fraud.simulator import simulate_transactions

    folder.mkdir()
    tx = simulate_transactions(n_customers=80, n_terminals=160, n_days=60, seed=1)
    tx = tx.rename(columns={"TX_DATETIME": "ts", "CUSTOMER_ID": "card", "TERMINAL_ID": "merchant", "TX_AMOUNT": "amount"})
    for day, part in tx.groupby(tx["ts"].dt.date):
        (change(part) if change and day.isoformat() == "2026-04-20" else part).to_csv(folder / f"{day}.csv", index=False)
    columns = {"time": "ts", "card": "card", "terminal": "merchant", "amount": "amount"}
    settings = ["data.dataset=fraud.transactions", f"data.path={folder}"]
    settings += [f"data.transactions.columns.{k}={v}" for k, v in columns.items()]
    return ["distill", "fraud", *[a for s in settings for a in ("--set", s)]]


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (lambda f: f.drop(columns=["merchant"]), [], "2026-04-20.csv: missing column(s) ['merchant'] of the transaction log"),
        (lambda f: f.assign(ts=f["ts"].astype(str).str.replace("2026-04-20", "20.04.2026")), [], "not ISO 8601 date-times"),
        (None, ["data.transactions.train_start=2026-04-15"], "first rows need 37 days of history"),
        (None, ["data.transactions.train_start=2026-05-20"], "would end on 2026-06-23"),
    ],
    ids=["missing-column", "unparseable-timestamps", "too-early", "after-the-data"],
)
def test_bad_raw_transaction_log(store: str, tmp_path: Path, change: Any, extra: list[str], message: str) -> None:
    args = _raw_log(tmp_path / "log", change)
    _fails([*args, *[a for s in extra for a in ("--set", s)]], message)
    _nothing_written(store)
