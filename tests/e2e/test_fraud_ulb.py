"""End to end on a file in the ULB credit-card format (``Time, V1..V28, Amount, Class``, here
with a bank's card id column): a full distillation that finishes, registers the student and
records a dataset source MLflow resolves (the ``ulb:`` source used to fail every run after the
teacher was trained, leaving a FAILED run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import stillroom
from stillroom import tracking
from stillroom.testing import assert_compliance_bundle, temporary_store

from .conftest import SMALL_MODELS

pytestmark = pytest.mark.slow

SMALL = ["data.dataset=fraud.ulb", "data.card=card", *SMALL_MODELS]


def ulb_file(path: Path, rows: int = 5000, seed: int = 0) -> Path:
    """Two days of ULB-format transactions; frauds (3%) shifted on V1..V4, as PCA components of
    real fraud are; ``card`` is a bank's card id beside the public columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 2 * 86_400, rows)).round()})
    fraud = (rng.random(rows) < 0.03).astype(int)
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=rows) + (1.5 * fraud if i <= 4 else 0.0)
    frame["Amount"] = rng.gamma(2.0, 40.0, rows).round(2)
    frame["Class"] = fraud
    frame["card"] = rng.integers(0, 400, rows)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ulb_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("ulb")
    with temporary_store(root):
        path = ulb_file(root / "creditcard.csv")
        summary = stillroom.distill("fraud", overrides=[*SMALL, f"data.path={path}"])
        yield summary.to_dict() | {"path": path}


def test_ulb_distillation_finishes_and_registers(ulb_run: dict[str, Any]) -> None:
    import mlflow

    run = mlflow.get_run(ulb_run["run_id"])
    assert run.info.status == "FINISHED"
    assert ulb_run["version"] == "1" and ulb_run["gate"] in ("passed", "failed")
    assert ulb_run["metrics"]["student.roc_auc"] > 0.8  # the shifted components are learnt
    assert_compliance_bundle(ulb_run["run_id"], "fraud")


def test_ulb_dataset_source_is_the_file_and_resolves(ulb_run: dict[str, Any]) -> None:
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    inputs = mlflow.get_run(ulb_run["run_id"]).inputs.dataset_inputs
    assert {d.tags[0].value for d in inputs} >= {"train", "validation", "test", "transfer"}
    sources = {d.dataset.source for d in inputs}
    uri = Path(ulb_run["path"]).resolve().as_uri()
    assert all(uri in source for source in sources), sources
    assert resolve_dataset_source(uri) is not None
    assert ulb_run["lineage"]["file_sha256"] and ulb_run["lineage"]["card_column"] == "card"


def test_the_configured_card_column_gives_card_precision(ulb_run: dict[str, Any]) -> None:
    logged = tracking.run_record(ulb_run["run_id"])
    assert logged.params["data.card"] == "card"
    for role in ("teacher", "student", "baseline"):
        assert 0 <= logged.metrics[f"{role}.card_precision_at_100"] <= 1
