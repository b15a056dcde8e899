"""A multi-task run through the product: two regression endpoints with sparse labels (each
molecule measured for one of them), the MLP student with one output per endpoint, logged as
a torch state dict inside the pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stillroom
from stillroom.audit.predictions import FILE, role_values
from stillroom.testing import missing_from_run
from stillroom_molecules import embedded
from stillroom_molecules.score_columns import SCORING_COLUMNS

pytestmark = pytest.mark.slow
# a small, quick run: random split, a 200-molecule pool, a light teacher, a one-layer MLP student
SMALL_MLP_RUN = [
    "data.split=random",
    "data.pool_max=200",
    "teacher.name=molecules.descriptor_ensemble",  # the light teacher (the default is chemprop with [gnn])
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=60",
    "teacher.params.forest_trees=30",
    "teacher.params.descriptors=screening",
    "student.name=molecules.mlp",
    "student.params.hidden=[64]",
    "student.params.epochs=20",
    "evaluation.bootstrap=10",
    "evaluation.efficiency_rows=100",
    "evaluation.latency_repeats=3",
]


def _distill_file(frame: pd.DataFrame, tmp_path: Path, *overrides: str) -> dict:
    """``stillroom distill molecules`` on the frame written as a CSV, its columns after the
    SMILES as the targets, with :data:`SMALL_MLP_RUN`."""
    path = tmp_path / "endpoints.csv"
    frame.to_csv(path, index=False)
    targets = ", ".join(json.dumps(c) for c in frame.columns if c != "smiles")  # names may hold commas
    base = ["data.dataset=molecules.file", f"data.path={path}", f"data.targets=[{targets}]"]
    base += ["molecules.endpoint=test endpoints", "molecules.units=test units"]
    return stillroom.distill("molecules", overrides=base + SMALL_MLP_RUN + list(overrides))


def test_multitask_mlp_student_on_sparse_endpoints(tracking_store: str, tmp_path: Path) -> None:
    import mlflow

    sol = embedded.solubility()[0].frame.sample(250, random_state=0).rename(columns={"SOL": "logS"})
    # a user's column name with a space and a comma (as SIDER's organ classes have)
    fs = embedded.freesolv().frame.sample(150, random_state=0).rename(columns={"expt": "dG hyd, kcal/mol"})
    frame = pd.concat([sol[["smiles", "logS"]], fs[["smiles", "dG hyd, kcal/mol"]]], ignore_index=True)
    summary = _distill_file(frame, tmp_path, "molecules.units=logS: log10(mol/L); dG: kcal/mol")
    m = summary["metrics"]
    assert summary["task_type"] == "regression" and summary["version"] == "1"
    for name in ("logS", "dG hyd_ kcal/mol"):  # metric keys keep the space; MLflow takes no comma
        assert np.isfinite(m[f"student.rmse.{name}"]) and f"student.ef_1pct.{name}" in m
        assert m[f"teacher.r2.{name}"] > 0.2  # each endpoint learnt from its own sparse labels
    # the default gate's per-output rules parse and find their metrics for that name too
    per_output = [r for r in summary["gate_reasons"] if "dG hyd_ kcal/mol" in r]
    assert len(per_output) >= 4 and not [r for r in summary["gate_reasons"] if "observed missing" in r]
    model = mlflow.pyfunc.load_model("models:/molecules-student/1")
    out = model.predict(pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "???"]}))
    # named after the data's target columns; each value's conformal interval after the annotations
    intervals = ["logS.lower", "logS.upper", "dG hyd, kcal/mol.lower", "dG hyd, kcal/mol.upper"]
    assert list(out.columns) == ["logS", "dG hyd, kcal/mol", *SCORING_COLUMNS, *intervals]
    assert out["smiles_valid"].tolist() == [True, True, False]
    files = [p.name for p in Path(mlflow.artifacts.download_artifacts("models:/molecules-student/1")).rglob("*")]
    assert "mlp.pt" in files
    # the run's test predictions: a column per endpoint per model, NaN where a molecule was not measured
    logged = mlflow.artifacts.download_artifacts(run_id=summary["run_id"], artifact_path=FILE, dst_path=str(tmp_path / "p"))
    table = pd.read_parquet(logged)
    assert [c for c in table.columns if c.startswith(("label.", "student."))] == [
        "label.logS", "label.dG hyd, kcal/mol", "student.logS", "student.dG hyd, kcal/mol"
    ]  # fmt: skip
    y, student = role_values(table, "label"), role_values(table, "student")
    assert np.isnan(y).any(axis=0).all() and not np.isnan(student).any()
    for j, key in enumerate(("logS", "dG hyd_ kcal/mol")):
        seen = ~np.isnan(y[:, j])
        rmse = float(np.sqrt(np.mean((y[seen, j] - student[seen, j]) ** 2)))
        assert rmse == pytest.approx(m[f"student.rmse.{key}"], rel=1e-9)


def test_a_panel_of_a_value_and_a_yes_no_endpoint_is_one_mixed_student(tracking_store: str, tmp_path: Path) -> None:
    """A mixed task through the product: hydration free energy (a value, FreeSolv molecules)
    and 'soluble beyond 1 mmol/L' (yes/no, solubility-set molecules) in one file, each
    molecule labelled for one of them. The teacher and both students learn the two as their
    kinds say; the run reports regression metrics for the one and ROC-AUC for the other, and
    the registered model scores a value and a probability."""
    import mlflow

    sol = embedded.solubility()[0].frame.sample(260, random_state=0)
    fs = embedded.freesolv().frame.sample(160, random_state=0).rename(columns={"expt": "dG_hyd"})
    sol = sol.assign(soluble=(sol["SOL"] > -3).astype(int))
    frame = pd.concat([fs[["smiles", "dG_hyd"]], sol[["smiles", "soluble"]]], ignore_index=True)
    summary = _distill_file(frame, tmp_path, "molecules.enrichment_fraction=0.05")
    m = summary["metrics"]
    assert summary["task_type"] == "mixed"
    assert m["teacher.r2"] > 0.5 and m["teacher.roc_auc"] > 0.75  # each kind learnt from its own labels
    assert np.isfinite(m["student.rmse"]) and 0.5 < m["student.roc_auc"] <= 1.0
    assert "fidelity.r2" in m and "fidelity.auc_to_teacher_calls.soluble" in m and "student.ef_1pct.dG_hyd" in m
    assert m["student.rmse.dG_hyd"] == m["student.rmse"] and m["student.roc_auc.soluble"] == m["student.roc_auc"]
    # a panel's unsuffixed enrichment (what the molecules profile asks for) is the mean over its endpoints
    assert m["student.ef_1pct"] == pytest.approx(np.mean([m["student.ef_1pct.dG_hyd"], m["student.ef_1pct.soluble"]]))
    # a configured fraction is reported beside 1%, which the profile asks of every run
    assert m["student.ef_5pct"] == pytest.approx(np.mean([m["student.ef_5pct.dG_hyd"], m["student.ef_5pct.soluble"]]))
    assert missing_from_run(summary["run_id"], "molecules") == {} and summary["compliance"]["status"] == "complete"
    model = mlflow.pyfunc.load_model(f"models:/molecules-student/{summary['version']}")
    out = model.predict(pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "???"]}))
    assert list(out.columns) == ["dG_hyd", "soluble", *SCORING_COLUMNS, "dG_hyd.lower", "dG_hyd.upper", "soluble.set"]
    assert set(out["soluble.set"].iloc[:2]) <= {"{0}", "{1}", "{0,1}", "{}"} and out["soluble.set"].iloc[2] == ""
    assert out["soluble"].iloc[:2].between(0, 1).all() and out["dG_hyd"].iloc[:2].lt(0).any()  # values stay on their scale
    assert out["smiles_valid"].tolist() == [True, True, False]


def test_a_yes_no_endpoint_is_called_at_probability_one_half(tracking_store: str, tmp_path: Path) -> None:
    """The molecules default operating point: every model calls a molecule active at p >= 0.5 (as
    ADMET-AI does), not the core's fraud default of the top 1%, which would leave two or three
    calls on this test split and make agreement and alert overlap a matter of chance."""
    import mlflow

    sol = embedded.solubility()[0].frame.sample(400, random_state=1)
    frame = sol.assign(soluble=(sol["SOL"] > -3).astype(int))[["smiles", "soluble"]]
    summary = _distill_file(frame, tmp_path)
    assert summary["task_type"] == "binary"
    card = Path(mlflow.artifacts.download_artifacts(run_id=summary["run_id"], artifact_path="model_card.json"))
    decisions = json.loads(card.read_text())["metrics"]["operating points"]["evaluation.operating_point"]
    assert decisions["rule"] == "probability >= 0.5 for every model"
    assert decisions["thresholds"] == {"teacher": 0.5, "student": 0.5, "baseline": 0.5}
    at_point = {row["metric"] for row in decisions["metrics at this point"]["table"]}
    assert at_point == {"fidelity.alert_overlap", "fidelity.agreement"}
    m = summary["metrics"]
    # with about half the molecules called soluble, agreement is measured on many calls each way
    assert 0.7 < m["fidelity.agreement"] <= 1.0 and 0.5 < m["fidelity.alert_overlap"] <= 1.0
    assert summary["compliance"]["status"] == "complete"
