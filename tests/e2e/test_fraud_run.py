"""End to end: distill the fraud vertical on simulated data into a real MLflow store, then
check the audit trail, score a batch with the registered student, and promote it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import stillroom
from stillroom import tracking
from stillroom.cli import app
from stillroom.contract import hookimpl, sha256_file
from stillroom.testing import assert_compliance_bundle

from .conftest import workdir

pytestmark = pytest.mark.slow


class Recorder:
    """Records every lifecycle and transfer hook call made during a run."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def stillroom_before_run(self, context: Any) -> None:
        self.calls.append(f"before_run:{context.task.name}")
        context.tags["recorder.ticket"] = "MRM-1234"
        context.params["recorder.reviewer"] = "A. Risk"

    @hookimpl
    def stillroom_after_run(self, context: Any, summary: dict[str, Any]) -> None:
        self.calls.append(f"after_run:{summary['gate']}")

    @hookimpl
    def stillroom_transfer_points(self, bundle: Any, config: Any, rng: Any) -> pd.DataFrame:
        self.calls.append("transfer_points")
        return bundle.X(bundle.validation).head(50).assign(__origin__="recorder")

    @hookimpl
    def stillroom_before_scoring(self, context: Any) -> None:
        self.calls.append(f"before_scoring:{context.model_version}")

    @hookimpl
    def stillroom_after_scoring(self, context: Any, summary: dict[str, Any]) -> None:
        self.calls.append(f"after_scoring:{summary['rows']}")


@pytest.fixture(scope="module")
def recorder() -> Any:
    from stillroom.api import get_plugin_manager

    rec = Recorder()
    get_plugin_manager().register_plugin(rec, "recorder")
    yield rec
    get_plugin_manager().unregister_plugin("recorder")


CALLER: dict[str, Any] = {}  # the caller's MLflow state and environment around stillroom.distill()


@pytest.fixture(scope="module")
def run(store: str, small_overrides: list[str], recorder: Recorder) -> Any:
    import os

    import mlflow

    mlflow.set_experiment("the caller's own")
    CALLER["before"] = (dict(os.environ), mlflow.tracking.fluent._active_experiment_id, mlflow.get_tracking_uri())
    result = stillroom.distill("fraud", overrides=small_overrides)
    CALLER["after"] = (dict(os.environ), mlflow.tracking.fluent._active_experiment_id, mlflow.get_tracking_uri())
    return result


def test_distill_returns_a_typed_result_and_leaves_the_callers_mlflow_state(run: Any) -> None:
    from stillroom.api import DistillResult

    assert isinstance(run, DistillResult) and run.version == "1" and run.passed == (run.gate == "passed")
    assert CALLER["after"] == CALLER["before"]  # environment, active experiment, tracking URI: as they were
    with mlflow_run() as caller_run:  # the caller's next run lands in the caller's experiment
        assert caller_run.info.experiment_id == CALLER["before"][1]


def mlflow_run() -> Any:
    import mlflow

    return mlflow.start_run()


def test_a_version_whose_run_is_not_finished_is_never_promoted(run: Any) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.set_terminated(run.run_id, "FAILED")
    try:
        args = ["promote", "fraud-student", "--version", run.version, "--approver", "A", "--reason", "R", "--override", "urgent"]
        refused = CliRunner().invoke(app, args)
        assert refused.exit_code == 2 and f"its run {run.run_id} is FAILED, not FINISHED" in refused.output, refused.output
        assert "champion" not in client.get_registered_model("fraud-student").aliases
    finally:
        client.set_terminated(run.run_id, "FINISHED")


def test_run_summary_and_hooks(run: dict[str, Any], recorder: Recorder) -> None:
    assert run["version"] == "1"
    assert run["gate"] in ("passed", "failed")
    assert recorder.calls[:3] == ["transfer_points", "before_run:fraud", f"after_run:{run['gate']}"]
    m = run["metrics"]
    for role in ("teacher", "student", "baseline"):
        assert 0.5 < m[f"{role}.roc_auc"] <= 1.0
        low, high = run["intervals"][f"{role}.average_precision"]
        assert low <= m[f"{role}.average_precision"] <= high
    assert m["retention.average_precision"] == pytest.approx(m["student.average_precision"] / m["teacher.average_precision"])
    assert m["efficiency.student.size_bytes"] < m["efficiency.teacher.size_bytes"]
    assert m["gate.passed"] == float(run["gate"] == "passed")
    assert {"data", "teacher", "student", "baseline", "evaluation"} <= set(run["timings"])
    assert all(seconds > 0 for seconds in run["timings"].values())
    logged = tracking.run_record(run["run_id"]).metrics
    assert logged["timing.student_seconds"] == pytest.approx(run["timings"]["student"])


def test_compliance_bundle(run: dict[str, Any]) -> None:
    assert_compliance_bundle(run["run_id"], "fraud")


def test_lineage_datasets_teacher_input_and_params(run: dict[str, Any]) -> None:
    record = tracking.run_record(run["run_id"])
    contexts = {d["context"]: d["digest"] for d in record.datasets}
    assert {"train", "validation", "test", "unlabelled", "transfer"} <= set(contexts)
    assert all(len(d) == 16 for d in contexts.values())
    assert len(record.model_inputs) == 1  # the teacher, logged in its own run
    assert record.params["recipe.alpha"] == "0.7"
    assert int(record.params["transfer.rows.recorder"]) == 50
    assert int(record.params["transfer.rows.munge"]) > 0
    assert record.tags["stillroom.gate"] == run["gate"]
    assert record.tags["recorder.ticket"] == "MRM-1234" and record.params["recorder.reviewer"] == "A. Risk"  # from before_run


def test_registered_version_is_tagged_with_gate_and_compliance(run: dict[str, Any]) -> None:
    tags = tracking.model_version_tags("fraud-student", run["version"])
    assert tags["stillroom.gate"] == run["gate"]
    assert tags["stillroom.run_id"] == run["run_id"]
    # the run-time check found the stored run complete, and says so on the run and the version
    assert run["compliance"] == {"status": "complete", "profiles": ["core", "core.binary", "fraud"], "missing": {}}
    assert tags["stillroom.compliance"] == "complete" and tags["stillroom.compliance_missing"] == ""
    assert tracking.run_record(run["run_id"]).tags["stillroom.compliance"] == "complete"


def test_model_card_and_manifest_hashes(run: dict[str, Any], tmp_path: Path) -> None:
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(run_id=run["run_id"], dst_path=str(tmp_path)))
    card = (local / "model_card.md").read_text()
    for heading in ("## Model details", "## Intended use", "## Quantitative analyses", "## Release gate", "## Caveats"):
        assert heading in card
    manifest = json.loads((local / "manifest.json").read_text())
    assert "model_card.md" in manifest["artifacts"] and manifest["model_files"]
    for name, entry in manifest["artifacts"].items():
        assert sha256_file(local / name) == entry["sha256"], name
    card_json = json.loads((local / "model_card.json").read_text())
    assert card_json["gate"]["status"] == run["gate"]


def test_score_batch_with_registered_student(run: dict[str, Any], store: str, recorder: Recorder) -> None:
    from stillroom_fraud.batch import make_batch

    batch = make_batch(rows=5000, seed=11, n_customers=300, n_terminals=600)
    src = workdir(store) / "batch.csv"
    out = workdir(store) / "scores.parquet"
    batch.to_csv(src, index=False)
    result = CliRunner().invoke(
        app,
        [
            "score",
            "models:/fraud-student/latest",
            str(src),
            str(out),
            "--passthrough",
            "TRANSACTION_ID",
            "--chunk-rows",
            "1500",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["TRANSACTION_ID", "score"]
    # ids from CSV pass through as text, so "007" would survive
    assert len(scores) == len(batch) and scores["TRANSACTION_ID"].tolist() == batch["TRANSACTION_ID"].astype(str).tolist()
    assert scores["score"].between(0, 1).all()
    assert f"after_scoring:{len(batch)}" in recorder.calls
    import mlflow

    scoring_runs = mlflow.search_runs(experiment_names=["stillroom-scoring"], output_format="list")
    assert scoring_runs and scoring_runs[0].data.params["model_version"] == run["version"]
    assert scoring_runs[0].data.metrics["rows"] == len(batch)
    assert "psi_vs_training" in scoring_runs[0].data.metrics
    assert scoring_runs[0].data.params["engine"] == "lleaves"  # the distillation logged a compiled student


def test_promotion_refused_on_failed_gate_unless_override(store: str, small_overrides: list[str]) -> None:
    failing = stillroom.distill(
        "fraud", overrides=[*small_overrides, "gate.rules=['student.roc_auc >= 1.01']", "transfer.munge.enabled=false"]
    )
    assert failing["gate"] == "failed"
    runner = CliRunner()
    base = [
        "promote",
        "fraud-student",
        "--version",
        failing["version"],
        "--approver",
        "Ada Risk",
        "--reason",
        "quarterly refresh",
    ]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 2 and "did not pass its gate" in refused.output
    import mlflow

    client = mlflow.MlflowClient()
    assert "champion" not in client.get_registered_model("fraud-student").aliases
    ok = runner.invoke(app, [*base, "--override", "regulator-approved exception #12"])
    assert ok.exit_code == 0, ok.output
    assert str(client.get_model_version_by_alias("fraud-student", "champion").version) == failing["version"]
    tags = tracking.model_version_tags("fraud-student", failing["version"])
    assert tags["stillroom.promotion.approver"] == "Ada Risk"
    assert tags["stillroom.promotion.override"] == "regulator-approved exception #12"
    history = tracking.promotion_history("fraud-student")
    assert history[-1]["reason"] == "quarterly refresh" and history[-1]["gate"] == "failed"
    assert history[-1]["compliance"] == "complete"


def test_metrics_are_bound_to_the_student_model(run: dict[str, Any]) -> None:
    import mlflow

    model_id = tracking.run_record(run["run_id"]).tags["stillroom.student_model_id"]
    bound = {m.key: m for m in mlflow.get_logged_model(model_id).metrics}
    assert bound["student.average_precision"].value == pytest.approx(run["metrics"]["student.average_precision"])
    assert bound["student.average_precision"].dataset_name == "test"


def test_the_logged_test_predictions_reproduce_every_logged_test_metric(run: dict[str, Any], tmp_path: Path) -> None:
    """A reviewer recomputes the card's figures from the run's own predictions/test.parquet."""
    import mlflow
    from sklearn.metrics import average_precision_score, roc_auc_score

    from stillroom.audit.predictions import FILE, role_values

    local = Path(mlflow.artifacts.download_artifacts(run_id=run["run_id"], dst_path=str(tmp_path)))
    table = pd.read_parquet(local / FILE)
    assert list(table.columns) == ["row", "label", "teacher", "student", "baseline"] and table["row"].is_unique
    y = role_values(table, "label")
    assert len(table) == json.loads((local / "lineage.json").read_text())["splits"]["test"]["rows"] and set(y) == {0, 1}
    for role in ("teacher", "student", "baseline"):
        scores = role_values(table, role)
        assert roc_auc_score(y, scores) == pytest.approx(run["metrics"][f"{role}.roc_auc"], abs=1e-12)
        assert average_precision_score(y, scores) == pytest.approx(run["metrics"][f"{role}.average_precision"], abs=1e-12)


def test_teacher_from_the_registry_is_a_run_input(store: str, small_overrides: list[str]) -> None:
    """A champion already in MLflow teaches by alias; the run links it instead of copying it."""
    import mlflow
    from sklearn.ensemble import RandomForestClassifier

    from stillroom_fraud.loaders import simulated_bundle

    bundle = simulated_bundle(n_customers=300, n_terminals=600, n_days=87, seed=0, train_days=21)
    champion = RandomForestClassifier(n_estimators=20, min_samples_leaf=5, random_state=0).fit(
        bundle.X(bundle.train), bundle.y(bundle.train)
    )
    mlflow.set_experiment("champions")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(champion, name="model", skops_trusted_types=["sklearn.tree._tree.Tree"])
    version = mlflow.register_model(info.model_uri, "fraud-champion").version
    mlflow.MlflowClient().set_registered_model_alias("fraud-champion", "prod", version)

    summary = stillroom.distill(
        "fraud",
        overrides=[
            *small_overrides,
            "teacher.name=null",
            "teacher.uri=models:/fraud-champion@prod",
            "run.registered_model=from-champion",
        ],
    )
    record = tracking.run_record(summary["run_id"])
    assert record.model_inputs == [info.model_id]
    assert record.params["teacher.source"] == "models:/fraud-champion@prod"
    expected_ap = summary["metrics"]["teacher.average_precision"]
    from sklearn.metrics import average_precision_score

    assert expected_ap == pytest.approx(
        average_precision_score(bundle.y(bundle.test), champion.predict_proba(bundle.X(bundle.test))[:, 1])
    )
