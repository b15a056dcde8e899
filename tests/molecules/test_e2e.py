"""End to end: `stillroom distill molecules` on the embedded default (small settings) into a real
MLflow store; the audit trail; scoring a SMILES file with invalid rows; a registered molecule
model as the teacher of the next run; every bad input ending in one message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import stillroom
from stillroom import tracking
from stillroom.cli import app
from stillroom.testing import assert_compliance_bundle, temporary_store
from stillroom_molecules.score_columns import SCORING_COLUMNS

pytestmark = pytest.mark.slow
runner = CliRunner()
SMALL = [
    "data.max_rows=300",
    "data.pool_max=400",
    "teacher.name=molecules.descriptor_ensemble",  # the light teacher (the default is chemprop with [gnn])
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=80",
    "teacher.params.forest_trees=40",
    "teacher.params.descriptors=screening",
    "student.params.n_estimators=80",
    "evaluation.bootstrap=20",
    "evaluation.efficiency_rows=200",
    "evaluation.latency_repeats=5",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with temporary_store(tmp_path_factory.mktemp("mlflow-molecules")) as uri:
        yield uri


@pytest.fixture(scope="module")
def run(store: str) -> dict[str, Any]:
    return stillroom.distill("molecules", overrides=SMALL)


def test_distills_the_embedded_default_and_registers_a_student(run: dict[str, Any]) -> None:
    assert run["version"] == "1" and run["task_type"] == "regression"
    m = run["metrics"]
    for role in ("teacher", "student", "baseline"):
        assert 0.0 < m[f"{role}.rmse"] < 2.5  # logS spans ~12 log units; a real model is well under 2
        assert m[f"{role}.r2"] > 0.3
        low, high = run["intervals"][f"{role}.rmse"]
        assert low <= m[f"{role}.rmse"] <= high
    assert m["fidelity.r2"] > 0.5
    assert 0.0 <= m["ad.coverage"] <= 1.0 and m["split.scaffold"] == 1.0
    assert "ad.inside.student.rmse" in m and m["student.ef_1pct"] >= 0
    assert m["efficiency.student.rows_per_second"] > m["efficiency.teacher.rows_per_second"]
    lineage = run["lineage"]
    assert lineage["split"] == "scaffold" and lineage["targets"] == ["SOL"]
    assert lineage["invalid_smiles"]["train_file"]["rows"] == 1025


def test_audit_trail_follows_the_molecules_profile(run: dict[str, Any]) -> None:
    assert_compliance_bundle(run["run_id"], "molecules")
    record = tracking.run_record(run["run_id"])
    assert record.params["molecules.units"] == "log10(mol/L)"
    assert record.params["molecules.featurizer"].startswith("Morgan count fingerprint r=2 2048 bits")
    assert record.params["molecules.rdkit_version"].startswith("20")
    assert record.params["molecules.split"] == "scaffold"
    assert "molecules/applicability_domain.csv" in record.artifacts
    # the baseline is the candidate molecules.auto chose, trained without a teacher: no choice of its own
    assert record.params["student.name"] == "molecules.auto"
    assert record.params["baseline.name"] in ("molecules.lightgbm", "molecules.mlp")
    assert record.params["baseline.params.featurizer.n_bits"] == "2048"
    assert run["metrics"]["baseline.rmse"] > 0


def test_logged_student_is_a_smiles_pyfunc_with_a_public_example(run: dict[str, Any]) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model("models:/molecules-student/1")
    inputs = model.metadata.get_input_schema().inputs
    assert [(c.name, c.type.name) for c in inputs] == [("smiles", "string")]
    out = model.predict(pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "garbage(("]}))
    assert list(out.columns) == ["score", *SCORING_COLUMNS, "lower", "upper"]  # the conformal interval last
    assert out["reason"].tolist() == ["", "", "parse"] and out["in_domain"].tolist()[2] is False
    assert out["smiles_valid"].tolist() == [True, True, False]
    assert out["score"].iloc[0] > out["score"].iloc[1]  # ethanol is far more soluble than benzene
    assert pd.isna(out["score"].iloc[2])
    files = [p.name for p in Path(mlflow.artifacts.download_artifacts("models:/molecules-student/1")).rglob("*")]
    native = "booster_0.txt" in files or "mlp.pt" in files  # whichever candidate molecules.auto chose
    assert native and "student.json" in files and not any(f.endswith((".pkl", ".joblib")) for f in files)


def test_the_descriptor_teacher_is_logged_and_linked_as_the_runs_teacher(run: dict[str, Any]) -> None:
    """Like the fraud and medical teachers: logged in its own run (a pyfunc scoring SMILES from
    LightGBM text and skops files) and named as the distillation run's logged-model input."""
    import mlflow

    record = tracking.run_record(run["run_id"])
    assert len(record.model_inputs) == 1
    teacher = mlflow.pyfunc.load_model(f"models:/{record.model_inputs[0]}")
    out = teacher.predict(pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "garbage(("]}))
    assert out["smiles_valid"].tolist() == [True, True, False]
    assert out["score"].iloc[0] > out["score"].iloc[1]  # ethanol is more soluble than benzene
    files = [p.name for p in Path(mlflow.artifacts.download_artifacts(f"models:/{record.model_inputs[0]}")).rglob("*")]
    assert "descriptor_ensemble.json" in files and not any(f.endswith((".pkl", ".joblib")) for f in files)


def test_score_a_smiles_file_with_invalid_rows(run: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "library.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "smiles": ["CCO", "not a molecule", "", "CC(=O)Oc1ccccc1C(=O)O"]}).to_csv(
        source, index=False
    )
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", "models:/molecules-student/1", str(source), str(out), "--passthrough", "id", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert scores["id"].tolist() == [1, 2, 3, 4]
    assert scores["smiles_valid"].tolist() == [True, False, False, True]
    assert scores["score"].isna().tolist() == [False, True, True, False]


def test_a_registered_smiles_model_can_teach(run: dict[str, Any]) -> None:
    second = stillroom.distill("molecules", overrides=SMALL + ["teacher.uri=models:/molecules-student/1", "teacher.name=null"])
    assert second["version"] == "2"
    record = tracking.run_record(second["run_id"])
    assert record.params["teacher.source"] == "models:/molecules-student/1"
    assert second["metrics"]["fidelity.r2"] > 0.8  # a LightGBM teacher on the same fingerprints is easy to copy


def test_score_a_smi_file(run: dict[str, Any], tmp_path: Path) -> None:
    """A plain SMILES file (header, tab- or space-separated names, a broken line) scores too."""
    source = tmp_path / "library.smi"
    source.write_text("smiles name\nCCO ethanol\nC1CC( broken\nc1ccccc1\tbenzene\nCC(=O)[O-].[Na+] sodium acetate\n")
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app, ["score", "models:/molecules-student/1", str(source), str(out), "--passthrough", "name", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    assert scores["name"].tolist() == ["ethanol", "broken", "benzene", "sodium acetate"]
    assert scores["smiles_valid"].tolist() == [True, False, True, True]
    assert scores["score"].isna().tolist() == [False, True, False, False]
