"""Honest verdicts, each on a real small run: a student worse than its no-teacher baseline fails
the default gate of its vertical (and non-inferiority is what catches it); a rule on a metric
from a few alerts fails as not estimable; a rule the data cannot produce is refused before any
teacher trains; ``stillroom distill`` exits 0, 3 and 2.

"Worse" is made honestly: the teacher is crippled (two depth-1 trees, one epoch at a
learning rate that cannot move a network, two trees that barely leave the mean) and the student
learns from it alone (``recipe.alpha=1``), while the baseline learns from the labels."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import mlflow
import pytest
from medical.npz import write_npz
from typer.testing import CliRunner

import stillroom
from stillroom.api import get_plugin_manager
from stillroom.cli import app
from stillroom.contract.rules import expand_rules
from stillroom.distillation.applicability import check_rules
from stillroom.distillation.pipeline import load_config

from .conftest import SMALL_MODELS

pytestmark = pytest.mark.slow
runner = CliRunner()

FRAUD = [  # the e2e module's small simulation and models, MUNGE off as in the default
    "data.simulation.n_customers=300",
    "data.simulation.n_terminals=600",
    "data.simulation.n_days=94",  # 37 days of feature history, then 56 days of periods
    "data.simulation.train_days=21",
    "data.simulation.test_days=14",  # 7 days hold ~27 frauds: ROC-AUC and AP would not be estimable (< 30)
    *SMALL_MODELS,
]
CRIPPLED_FRAUD_TEACHER = ["teacher.params.members=[random_forest]", "teacher.params.n_trees=2", "teacher.params.max_depth=1"]
ONLY_THE_TEACHER = ["recipe.alpha=1.0"]
MEDICAL = [
    "data.synthetic.n_train=300",
    "data.synthetic.n_validation=150",
    "data.synthetic.n_test=200",
    "data.synthetic.size=16",
    "teacher.params.widths=[8, 16, 32]",
    "student.params.widths=[8, 16, 16]",
    "student.params.epochs=4",
    "student.params.progress=false",
    "teacher.params.progress=false",
    "evaluation.bootstrap=100",
    "evaluation.efficiency_rows=60",
    "evaluation.latency_repeats=10",
]
CRIPPLED_MEDICAL_TEACHER = ["teacher.params.epochs=1", "teacher.params.learning_rate=1e-7"]
MOLECULES = [
    "teacher.name=molecules.descriptor_ensemble",  # the light teacher, crippled below (the default is chemprop)
    "data.max_rows=300",
    "data.pool_max=400",
    "teacher.params.descriptors=screening",
    "student.params.n_estimators=80",
    "evaluation.bootstrap=100",
    "evaluation.efficiency_rows=200",
    "evaluation.latency_repeats=5",
]
CRIPPLED_MOLECULES_TEACHER = [
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=2",
    "teacher.params.learning_rate=0.01",
    "teacher.params.forest_trees=0",
]


def _distill(task: str, overrides: list[str]) -> Any:
    args = ["distill", task, "--json"]
    for item in overrides:
        args += ["--set", item]
    return runner.invoke(app, args)


def _result(output: str) -> dict[str, Any]:
    return json.loads(output[output.index("{") :])


def _rule(result: dict[str, Any], rule: str) -> str:
    return next(r for r in result["gate_reasons"] if r.split(" ", 1)[1].startswith(rule))


def _assert_not_inferior_fails(result: dict[str, Any], metric: str, margin: float, worse_is_higher: bool = False) -> None:
    """The student is worse than the baseline by more than the margin, and non-inferiority says so."""
    m = result["metrics"]
    assert result["gate"] == "failed" and result["gate_undecided"] is False  # decided: shown worse
    student, baseline = m[f"student.{metric}"], m[f"baseline.{metric}"]
    assert (student > baseline) if worse_is_higher else (student < baseline), (student, baseline)
    low, _ = result["intervals"][f"gain.{metric}"]
    assert low < -margin
    assert _rule(result, f"noninferior({metric})").startswith(f"FAIL noninferior({metric}) (gain.{metric}.ci_low >= -{margin:g}")


def passing_verdict(result: Any) -> str:
    return str(_result(result.output)["gate_verdict"])


def _version_tag(name: str, key: str) -> str:
    return mlflow.MlflowClient().get_model_version(name, "1").tags[key]


def test_fraud_a_student_taught_by_a_crippled_teacher_fails_noninferiority_and_exits_3(tracking_store: str) -> None:
    result = _distill("fraud", FRAUD + CRIPPLED_FRAUD_TEACHER + ONLY_THE_TEACHER)
    assert result.exit_code == 3, result.output
    run = _result(result.output)
    _assert_not_inferior_fails(run, "roc_auc", 0.01)
    _assert_not_inferior_fails(run, "average_precision", 0.01)
    assert run["version"] == "1" and _version_tag("fraud-student", "stillroom.gate") == "failed"  # kept, for review


def test_fraud_exit_0_on_a_passing_gate_and_3_on_alert_overlap_from_a_few_alerts(tracking_store: str, tmp_path: Path) -> None:
    passing = _distill("fraud", [*FRAUD, "gate.rules=['student.roc_auc >= 0.6', 'efficiency.size_ratio <= 0.5']"])
    assert "student.roc_auc" not in _result(passing.output)["not_estimable"]
    assert passing.exit_code == 0, passing.output
    assert _result(passing.output)["gate"] == "passed"
    # the same data and teacher (its outputs cached): at the default 1% alert rate the teacher raises
    # only a few alerts on this small test split, too few to judge the overlap with
    few = _distill("fraud", [*FRAUD, "gate.rules=['fidelity.alert_overlap >= 0.5']"])
    assert few.exit_code == 3, few.output
    run = _result(few.output)
    why = run["not_estimable"]["fidelity.alert_overlap"]
    alerts = int(why.split()[0])
    assert 0 < alerts < 30 and why == f"{alerts} teacher alerts at the operating point < 30"
    assert run["gate_reasons"] == [
        f"FAIL fidelity.alert_overlap >= 0.5 (not estimable: {why}; observed {run['metrics']['fidelity.alert_overlap']:.6g})"
    ]
    # failed, but on no decided rule: the verdict, the card and the report say the evidence fell short
    assert passing_verdict(passing) == "passed" and run["gate_verdict"].startswith("failed, undecided: ")
    assert run["gate_undecided"] is True and _result(passing.output)["gate_undecided"] is False
    card = Path(mlflow.artifacts.download_artifacts(run_id=run["run_id"], artifact_path="model_card.md")).read_text()
    assert "failed, undecided: every failing rule is inconclusive or not estimable" in card
    from stillroom.audit.report import write_report

    html = write_report(run["run_id"], tmp_path / "report.html").read_text()
    assert 'id="gate-undecided"' in html and f"<td>{escape('not estimable: ' + why)}</td>" in html


def test_the_model_card_and_the_report_list_the_metrics_that_were_not_estimable(tracking_store: str, tmp_path: Path) -> None:
    """min_events above the test split's events: ROC-AUC and AP (with retention and gain) and the
    alert overlap are not estimable, and card and report say so, metric by metric, with the
    events counted and the minimum."""
    from stillroom.audit.report import write_report

    result = _distill("fraud", [*FRAUD, "evaluation.min_events=5000"])
    assert result.exit_code == 3, result.output  # the default gate's rules rest on them
    run = _result(result.output)
    positives = run["not_estimable"]["student.roc_auc"].split()[0]
    alerts = run["not_estimable"]["fidelity.alert_overlap"].split()[0]
    card = Path(mlflow.artifacts.download_artifacts(run_id=run["run_id"], artifact_path="model_card.md")).read_text()
    assert "not estimable (fewer than evaluation.min_events = 5000 events)" in card
    assert f"| student.roc_auc | {positives} test positives | 5000 |" in card
    assert f"| gain.average_precision | {positives} test positives | 5000 |" in card
    assert f"| fidelity.alert_overlap | {alerts} teacher alerts at the operating point | 5000 |" in card
    html = write_report(run["run_id"], tmp_path / "report.html").read_text()
    table = html[html.index('id="not-estimable-table"') :]
    table = table[: table.index("</table>")]
    assert all(f"<td>{name}</td>" in table for name in run["not_estimable"])


def test_a_rule_no_evaluator_reports_is_refused_before_the_teacher_trains(tracking_store: str) -> None:
    result = _distill("fraud", [*FRAUD, "gate.rules=['retention.rmse >= 0.9']"])
    assert result.exit_code == 2, result.output
    assert (
        "gate rule 'retention.rmse >= 0.9' cannot apply to this data: no evaluator of a binary fraud run reports" in result.output
    )
    _nothing_trained(tracking_store)


def _nothing_trained(uri: str) -> None:
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []  # no teacher run either
    assert mlflow.MlflowClient().search_registered_models() == []
    cache = Path(uri.removeprefix("sqlite:///")).parent / "cache"
    assert not cache.exists() or not any(cache.rglob("*teacher*")), sorted(cache.rglob("*"))


def test_medical_npz_without_metadata_passes_the_default_gate_check_and_a_subgroup_rule_is_refused_up_front(
    tracking_store: str, tmp_path: Path
) -> None:
    archive = write_npz(tmp_path / "scans.npz")
    data = ["data.dataset=medical.npz", f"data.path={archive}"]
    pm = get_plugin_manager()
    task = pm.task("medical")
    cfg = load_config(task, None, data)
    bundle = pm.registry.get("dataset", cfg.data.dataset).load(cfg.data, 0)
    assert not bundle.details.get("metadata_columns")
    check_rules(
        expand_rules(cfg.gate.rules, bundle.task_type, None, bundle.output_names),
        cfg,
        bundle,
        pm.registry.for_task("evaluator", "medical"),
    )
    refused = _distill(
        "medical", [*data, *MEDICAL, "gate.rules=['retention.roc_auc >= 0.9', 'student.worst_subgroup_sensitivity >= 0.7']"]
    )
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    assert (
        "gate rule 'student.worst_subgroup_sensitivity >= 0.7' cannot apply to this data" in text and "data.metadata_csv" in text
    )
    _nothing_trained(tracking_store)


def test_medical_a_student_taught_by_a_crippled_teacher_fails_noninferiority(tracking_store: str) -> None:
    result = _distill("medical", MEDICAL + CRIPPLED_MEDICAL_TEACHER + ONLY_THE_TEACHER)
    assert result.exit_code == 3, result.output
    run = _result(result.output)
    _assert_not_inferior_fails(run, "roc_auc", 0.01)
    assert run["version"] == "1" and _version_tag("medical-student", "stillroom.gate") == "failed"


def test_molecules_a_student_taught_by_a_crippled_teacher_fails_noninferiority(tracking_store: str) -> None:
    run = stillroom.distill("molecules", overrides=MOLECULES + CRIPPLED_MOLECULES_TEACHER + ONLY_THE_TEACHER)
    assert not run.passed
    _assert_not_inferior_fails(run.to_dict(), "rmse", 0.05, worse_is_higher=True)
    assert _version_tag("molecules-student", "stillroom.gate") == "failed"
