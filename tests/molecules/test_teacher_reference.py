"""Distilling a published model on molecules without labels (``data.reference=teacher``).

A screening group with an in-house library and ADMET-AI, but no hERG or logD measurements,
runs ``stillroom distill molecules`` on a bare SMILES file: the teacher labels every molecule,
the student learns its outputs, and the run is judged against the teacher's own values and
calls on held-out molecules. The numbers the run logs are recomputed here from the registered
student and the teacher themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_squared_error, roc_auc_score
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.testing import missing_from_run
from stillroom_molecules import embedded

pytestmark = pytest.mark.slow
runner = CliRunner()
PANEL = ["Lipophilicity_AstraZeneca", "hERG"]  # a value and a yes/no endpoint: one mixed student


def _library(tmp_path: Path, rows: int = 700) -> Path:
    """A bare SMILES file (no target columns), as a screening library is."""
    path = tmp_path / "library.smi"
    smiles = embedded.nci_pool().frame["smiles"].head(rows)
    path.write_text("smiles\n" + "\n".join(smiles) + "\n")
    return path


ADMET_AI = ("teacher.name=molecules.admet", f"teacher.params.endpoints=[{', '.join(PANEL)}]")


TEACHER_GATE = ("gate.rules=['fidelity.{fidelity} >= 0.3', 'efficiency.speedup_rows_per_second >= 10']",)
"""A gate without the baseline and the teacher's own scores: this data has no labels."""


def _distill(path: Path, teacher: tuple[str, ...] = ADMET_AI, gate: tuple[str, ...] = TEACHER_GATE) -> Any:
    args = ["distill", "molecules"]
    for item in (
        "data.dataset=molecules.file",
        f"data.path={path}",
        "molecules.endpoint=ADMET-AI panel (Lipophilicity_AstraZeneca logD, hERG block)",
        "molecules.units=logD; probability",
        "data.reference=teacher",
        f"data.targets=[{', '.join(PANEL)}]",
        "data.task_type=mixed",
        "data.output_types=[regression, binary]",
        "data.pool=none",
        "evaluation.bootstrap=20",
        "evaluation.efficiency_rows=200",
        "evaluation.latency_repeats=3",
        *teacher,
        *gate,
    ):
        args += ["--set", item]
    return runner.invoke(app, args)


def test_a_library_without_labels_is_distilled_against_the_teacher(tracking_store: str, tmp_path: Path) -> None:
    pytest.importorskip("admet_ai")
    import mlflow

    from stillroom_molecules.admet import AdmetTeacher

    result = _distill(_library(tmp_path))
    assert "judged against the teacher's outputs" in " ".join(result.output.split())
    run = mlflow.search_runs(experiment_names=["stillroom-molecules"], output_format="list")[0]
    metrics, tags = run.data.metrics, run.data.tags
    assert result.exit_code == (0 if tags["stillroom.gate"] == "passed" else 3), result.output
    assert tags["stillroom.reference"] == "teacher" and tags["stillroom.task_type"] == "mixed"
    # no baseline and no score of the teacher against itself; everything else the profiles ask for
    assert not [k for k in metrics if k.startswith(("baseline", "teacher.", "retention.", "gain.", "efficiency.baseline."))]
    assert missing_from_run(run.info.run_id, "molecules") == {}
    assert "molecules-student" in {m.name for m in mlflow.MlflowClient().search_registered_models()}

    # the logged numbers, recomputed: the registered student and ADMET-AI on the held-out molecules
    held_out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="molecules/applicability_domain.csv")
    ad = pd.read_csv(held_out)
    test = pd.DataFrame({"smiles": ad["smiles"]})
    teacher = AdmetTeacher(PANEL).predict(test)
    student = mlflow.pyfunc.load_model("models:/molecules-student/1").predict(test)
    assert np.sqrt(mean_squared_error(teacher[:, 0], student[PANEL[0]])) == pytest.approx(metrics["student.rmse"], rel=1e-4)
    assert roc_auc_score(teacher[:, 1] >= 0.5, student[PANEL[1]]) == pytest.approx(metrics["student.roc_auc"], rel=1e-4)
    assert metrics["fidelity.r2"] > 0.3 and metrics["student.roc_auc"] > 0.7  # it learnt the teacher, not noise

    card = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model_card.md")).read_text()
    assert "the teacher's outputs (the data has no labels)" in card and "baseline**: none" in card
    assert "on the teacher's outputs alone (no labels to blend in" in card


def test_the_default_gate_is_refused_before_the_teacher_runs_without_labels(tracking_store: str, tmp_path: Path) -> None:
    """Retention and non-inferiority need labels (a baseline, a judged teacher): one message naming
    the rule and what would make it apply, before the teacher labels anything."""
    import mlflow

    result = _distill(_library(tmp_path, rows=100), gate=())
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "gate rule 'retention.rmse >= 0.9' cannot apply to this data" in text and "give the data labels" in text
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


@pytest.mark.parametrize("teacher", ["molecules.descriptor_ensemble", "molecules.chemprop"])
def test_a_teacher_that_needs_labels_is_refused(tracking_store: str, tmp_path: Path, teacher: str) -> None:
    """The plugin's own teachers train on labels: with none, one message before anything runs."""
    import mlflow

    if teacher == "molecules.chemprop":
        pytest.importorskip("chemprop")
    result = _distill(_library(tmp_path, rows=100), teacher=(f"teacher.name={teacher}",))
    assert result.exit_code == 2, result.output
    assert "trains on labels" in " ".join(result.output.split()) and "Traceback" not in result.output
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_the_task_type_must_be_stated(tracking_store: str, tmp_path: Path) -> None:
    args = ["distill", "molecules", "--set", "data.dataset=molecules.file", "--set", f"data.path={_library(tmp_path, 50)}"]
    args += ["--set", "data.reference=teacher", "--set", "data.targets=[hERG]"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "data.task_type is required with data.reference 'teacher'" in result.output
