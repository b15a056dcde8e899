"""``stillroom score --engine spark``: the same model through a real local Spark session gives
the local engine's output, checks its input before any work, and publishes atomically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from stillroom import tracking
from stillroom.api import score
from stillroom.contract.bundle import synthetic_example
from stillroom.contract.protocols import NativeModel
from stillroom.errors import DataError, ModelLoadError, OutputError

from .conftest import FEATURES, Registered, transactions

ROWS = 100_000


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One local Spark session for the module; the engine reuses the running session."""
    from stillroom.scoring.spark import session

    with session("local[2]") as active:
        yield active


@pytest.fixture(scope="module")
def batch(registered: Registered) -> Path:
    path = registered.workdir / "batch.parquet"
    transactions(ROWS, seed=11).to_parquet(path, index=False, row_group_size=30_000)
    return path


def _score(registered: Registered, src: Path, out: Path, engine: str, **kwargs: object) -> dict:
    return score(registered.uri, src, out, passthrough=("TRANSACTION_ID",), progress=False, engine=engine, **kwargs)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_spark_engine_gives_the_local_engines_output_on_100k_rows(
    registered: Registered, spark: object, batch: Path, tmp_path: Path
) -> None:
    local = _score(registered, batch, tmp_path / "local.parquet", "local")
    distributed = _score(registered, batch, tmp_path / "spark.parquet", "spark")
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "spark.parquet")
    assert list(b.columns) == list(a.columns) == ["TRANSACTION_ID", "score"]
    assert len(b) == ROWS and b["TRANSACTION_ID"].tolist() == a["TRANSACTION_ID"].tolist()  # same rows, same order
    np.testing.assert_allclose(b["score"], a["score"], rtol=0, atol=1e-6)
    assert distributed["rows"] == local["rows"] == ROWS
    assert distributed["input_digest"] == local["input_digest"]
    assert distributed["score_mean"] == pytest.approx(local["score_mean"], abs=1e-9)
    run = tracking.run_record(distributed["run_id"])
    assert run.params["engine"] == "spark:local[*]" and run.tags["stillroom.engine"] == "spark:local[*]"
    assert run.params["model_version"] == "1" and run.metrics["rows"] == ROWS
    histogram = mlflow.artifacts.load_dict(f"runs:/{distributed['run_id']}/score_histogram.json")
    local_histogram = mlflow.artifacts.load_dict(f"runs:/{local['run_id']}/score_histogram.json")
    assert histogram == local_histogram and sum(histogram["counts"]) == ROWS
    assert _leftovers(tmp_path) == []


def test_spark_output_replaces_an_older_output_whole(registered: Registered, spark: object, tmp_path: Path) -> None:
    src, out = tmp_path / "small.parquet", tmp_path / "out.parquet"
    transactions(2000, seed=12).to_parquet(src, index=False)
    out.write_bytes(b"yesterday's scores")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        _score(registered, src, out, "spark")
    assert out.read_bytes() == b"yesterday's scores"
    _score(registered, src, out, "spark", overwrite=True)
    assert out.is_dir() and len(pd.read_parquet(out)) == 2000
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.drop(columns=["f2"]), "missing columns: 'f2'"),
        (lambda f: f.assign(extra=1.0), "extra columns: 'extra'"),
        (lambda f: f.assign(f4=f["f4"].astype(str)), "'f4' is string, expected double"),
        (lambda f: f.assign(f1=np.where(np.arange(len(f)) == 7, np.nan, f["f1"])), "'f1' has 1"),
        (lambda f: f.assign(f5=np.where(np.arange(len(f)) < 2, np.inf, f["f5"])), "'f5' has 2"),
    ],
    ids=["missing", "extra", "wrong-type", "nan", "inf"],
)
def test_bad_input_fails_with_one_message_and_no_output(
    registered: Registered, spark: object, tmp_path: Path, change: object, match: str
) -> None:
    src, out = tmp_path / "bad.parquet", tmp_path / "out.parquet"
    change(transactions(500, seed=13)).to_parquet(src, index=False)  # type: ignore[operator]
    with pytest.raises(DataError, match=match):
        _score(registered, src, out, "spark")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_spark_engine_refuses_csv_and_a_master_without_spark(registered: Registered, tmp_path: Path) -> None:
    src = tmp_path / "batch.csv"
    transactions(10, seed=14).to_csv(src, index=False)
    with pytest.raises(DataError, match="the spark engine reads Parquet"):
        _score(registered, src, tmp_path / "out.parquet", "spark")
    with pytest.raises(DataError, match="--master is for the spark engine"):
        _score(registered, src, tmp_path / "out.csv", "local", master="local[2]")
    with pytest.raises(DataError, match="unknown engine 'dask'"):
        _score(registered, src, tmp_path / "out.csv", "dask")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]


def test_teacher_labels_through_spark_equal_its_local_probabilities(
    registered: Registered, spark: object, tmp_path: Path
) -> None:
    """A LightGBM teacher (here the registered model) and a scikit-learn one logged as the
    pipeline logs a plugin-trained teacher label rows through Spark exactly as in-process, in
    the rows' order; a scikit-learn pyfunc that predicts labels is refused."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from stillroom.scoring.spark import label_rows

    rows = transactions(20_000, seed=16)[FEATURES]
    by_spark = label_rows(tracking.teacher_spark_udf_factory(registered.uri), rows, None, tmp_path)
    np.testing.assert_allclose(by_spark, registered.booster.predict(rows), rtol=0, atol=1e-12)

    y = (rows["f0"] + rows["f1"] > 0).astype(int)
    logistic = LogisticRegression().fit(rows, y)
    teacher_id = tracking.log_teacher_model(
        NativeModel("sklearn", logistic), "logistic", "scale-tests", {"kind": "logistic"}, synthetic_example(rows)
    )
    with mlflow.start_run():
        labels = mlflow.sklearn.log_model(logistic, name="labels-teacher", input_example=rows.head(2))
    by_spark = label_rows(tracking.teacher_spark_udf_factory(f"models:/{teacher_id}"), rows, None, tmp_path / "sk")
    np.testing.assert_allclose(by_spark, logistic.predict_proba(rows)[:, 1], rtol=0, atol=1e-12)
    with pytest.raises(ModelLoadError, match="does not return probabilities"):
        tracking.teacher_spark_udf_factory(labels.model_uri)


def test_teacher_spark_master_needs_an_mlflow_teacher() -> None:
    from pydantic import ValidationError

    from stillroom.contract.config import TeacherConfig

    assert TeacherConfig(uri="models:/fraud-champion@prod", spark_master="local[*]").spark_master == "local[*]"
    with pytest.raises(ValidationError, match="teacher.spark_master needs an MLflow teacher.uri"):
        TeacherConfig(name="fraud.ensemble", spark_master="local[*]")
