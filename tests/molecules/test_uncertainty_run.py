"""End to end with the new defaults: analogues in the transfer set, the student chosen among
candidates, conformal intervals / sets logged with the registered model and written by
`stillroom score` beside the score; coverage and width reported on test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import stillroom
from stillroom import tracking
from stillroom.cli import app
from stillroom.testing import assert_compliance_bundle, temporary_store
from stillroom_molecules import embedded

pytestmark = pytest.mark.slow
runner = CliRunner()
SMALL = [
    "data.max_rows=400",
    "data.valid_fraction=0.2",
    "data.pool_max=300",
    "teacher.name=molecules.descriptor_ensemble",  # the light teacher (the default is chemprop with [gnn])
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=60",
    "teacher.params.forest_trees=30",
    "teacher.params.descriptors=screening",
    "student.params.n_estimators=80",
    "student.params.epochs=10",
    "molecules.analogues.enabled=true",
    "molecules.analogues.max_count=120",
    "evaluation.bootstrap=20",
    "evaluation.efficiency_rows=200",
    "evaluation.latency_repeats=5",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with temporary_store(tmp_path_factory.mktemp("mlflow-molecules-uncertainty")) as uri:
        yield uri


@pytest.fixture(scope="module")
def temp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The process's temp folder for the run, to see what the run leaves in it."""
    import tempfile

    folder = tmp_path_factory.mktemp("process-temp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(folder))
        yield folder


@pytest.fixture(scope="module")
def run(store: str, temp_folder: Path) -> dict[str, Any]:
    return stillroom.distill("molecules", overrides=SMALL).to_dict()


def test_the_run_leaves_no_model_files_in_the_temp_folder(run: dict[str, Any], temp_folder: Path) -> None:
    """The teacher's and the student's pyfunc files are written to be logged, then removed."""
    assert run["gate"] in ("passed", "failed")
    assert sorted(p.name for p in temp_folder.iterdir() if p.name.startswith("stillroom-")) == []


def test_the_transfer_set_holds_analogues_and_their_composition_is_logged(run: dict[str, Any]) -> None:
    record = tracking.run_record(run["run_id"])
    by_method = {k: int(v) for k, v in record.params.items() if k.startswith("transfer.rows.analogue.")}
    assert sum(by_method.values()) == 120 and len(by_method) == 4
    m = run["metrics"]
    assert m["transfer.analogues.accepted"] == 120
    assert all(f"transfer.analogues.rejected.{r}" in m for r in ("invalid", "duplicate", "below_the_band", "above_the_band"))
    assert run["lineage"]["analogues"]["similarity_band"] == [0.4, 0.9]


def test_the_student_choice_and_its_candidates_are_logged(run: dict[str, Any]) -> None:
    from mlflow.artifacts import download_artifacts

    record = tracking.run_record(run["run_id"])
    assert record.params["student.name"] == "molecules.auto"
    assert "molecules/student_selection.json" in record.artifacts and "tables/student_selection.csv" in record.artifacts
    chosen = json.loads(
        Path(download_artifacts(run_id=run["run_id"], artifact_path="molecules/student_selection.json")).read_text()
    )
    assert set(chosen) == {"student"}  # the baseline makes no choice of its own: it is the student's, on labels
    rows = chosen["student"]
    assert len(rows) == 4 and sum(r["chosen"] for r in rows) == 1 and {r["reference"] for r in rows} == {"teacher"}
    shipped = next(r for r in rows if r["chosen"])
    assert record.params["baseline.name"] == shipped["name"]
    assert_compliance_bundle(run["run_id"], "molecules")


def test_coverage_and_width_are_reported_overall_and_by_domain(run: dict[str, Any]) -> None:
    m = run["metrics"]
    assert m["conformal.level"] == 0.9
    for role in ("student", "baseline"):
        assert 0.5 <= m[f"conformal.{role}.coverage"] <= 1.0 and 0 < m[f"conformal.{role}.width"] < 10
        # the molecules behind the figures: calibration split and every labelled test molecule
        test_rows = run["data_quality"]["splits"]["test"]["rows"]
        assert m[f"conformal.{role}.n_calibration"] >= 10 and m[f"conformal.{role}.n_test"] == test_rows
        for region in ("inside", "outside"):
            key = f"ad.{region}.conformal.{role}.coverage"
            assert key not in m or 0 <= m[key] <= 1
        inside, outside = (m.get(f"ad.{r}.conformal.{role}.n_test", 0) for r in ("inside", "outside"))
        assert inside + outside == m[f"conformal.{role}.n_test"]
    assert any(k.startswith("ad.inside.conformal.student") for k in m) or m["ad.coverage"] == 0


def test_stillroom_score_writes_the_interval_beside_the_score(run: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "library.csv"
    pd.DataFrame({"id": [1, 2, 3], "smiles": ["CCO", "not a molecule", "CC(=O)Oc1ccccc1C(=O)O"]}).to_csv(source, index=False)
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", "models:/molecules-student/1", str(source), str(out), "--passthrough", "id", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert {"score", "lower", "upper", "smiles_valid"} <= set(scores.columns)
    valid = scores["smiles_valid"].to_numpy()
    assert (scores["lower"][valid] < scores["score"][valid]).all() and (scores["score"][valid] < scores["upper"][valid]).all()
    assert scores.loc[~valid, ["score", "lower", "upper"]].isna().all().all()
    widths = (scores["upper"] - scores["lower"])[valid]
    assert np.allclose(widths, widths.iloc[0])  # split conformal: one width, the calibration quantile twice


def test_a_yes_no_model_scores_prediction_sets(store: str, tmp_path: Path) -> None:
    train, _ = embedded.solubility()
    frame = train.frame.assign(soluble=(train.frame["SOL"] > -3).astype(int))[["smiles", "soluble"]]
    data = tmp_path / "soluble.csv"
    frame.to_csv(data, index=False)
    overrides = [o for o in SMALL if not o.startswith("data.max_rows")] + [
        "data.dataset=molecules.file",
        f"data.path={data}",
        "data.targets=[soluble]",
        "molecules.endpoint=aqueous solubility above 1 mmol/L",
        "molecules.units=yes (1) / no (0)",
        "data.max_rows=400",
        "run.registered_model=molecules-soluble",
        "student.name=molecules.lightgbm",
        "molecules.analogues.enabled=false",
        "student.params.conformal.level=0.8",
    ]
    result = stillroom.distill("molecules", overrides=[o for o in overrides if not o.startswith("student.params.epochs")])
    assert result.metrics["conformal.level"] == 0.8
    assert 0 < result.metrics["conformal.student.width"] <= 2  # a mean set size
    source = tmp_path / "library.csv"
    pd.DataFrame({"smiles": ["CCO", "((", "c1ccc2ccccc2c1"]}).to_csv(source, index=False)
    out = tmp_path / "sets.csv"
    scored = runner.invoke(app, ["score", "models:/molecules-soluble/1", str(source), str(out), "--no-progress"])
    assert scored.exit_code == 0, scored.output
    sets = pd.read_csv(out, keep_default_na=False)
    assert {"score", "set", "smiles_valid"} <= set(sets.columns)
    assert set(sets["set"][[0, 2]]) <= {"{0}", "{1}", "{0,1}", "{}"} and sets["set"][1] == ""
