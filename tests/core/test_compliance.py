"""The compliance check every run gets when it is logged (``stillroom.compliance``).

Unit checks on hand-made run records against the real core profiles, then a real toy run whose
profile asks for what the run does not log: the gap is tagged on the run and the version,
printed, shown in the HTML report, and the version is promoted only with an override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.test_task_types import CONFIG, ToyVertical
from stillroom import tracking
from stillroom.api import get_plugin_manager
from stillroom.audit.compliance import ComplianceCheck, check, requirements
from stillroom.cli import app
from stillroom.contract.specs import ComplianceProfile
from stillroom.tracking import RunRecord


def _complete_record(task_type: str = "regression", reference: str = "labels") -> RunRecord:
    """A record holding exactly what ``core`` and ``core.<task_type>`` require."""
    _, profile = requirements(get_plugin_manager().registry, "core", task_type)
    tags = dict.fromkeys(profile.tags, "x") | {"stillroom.task_type": task_type, "stillroom.reference": reference}
    return RunRecord(
        metrics=dict.fromkeys(profile.metrics, 1.0),
        params=dict.fromkeys(profile.params, "x"),
        tags=tags,
        artifacts=list(profile.artifacts),
        datasets=[{"name": "test", "digest": "d", "context": "test"}],
        model_inputs=[],
    )


def test_a_record_with_everything_is_complete() -> None:
    checked = check(_complete_record(), get_plugin_manager().registry, "core")
    assert checked.complete and checked.status == "complete"
    assert checked.profiles == ("core", "core.regression", "core")
    assert checked.tags() == {"stillroom.compliance": "complete", "stillroom.compliance_missing": ""}


def test_each_kind_of_gap_is_named() -> None:
    record = _complete_record()
    del record.metrics["student.rmse"], record.params["run.seed"], record.tags["stillroom.gate"]
    record.artifacts.remove("model_card.md")
    record.datasets.clear()
    checked = check(record, get_plugin_manager().registry, "core")
    assert checked.status == "incomplete"
    assert checked.missing == {
        "metrics": ["student.rmse"],
        "params": ["run.seed"],
        "tags": ["stillroom.gate"],
        "artifacts": ["model_card.md"],
        "datasets": ["no mlflow.data dataset inputs"],
    }
    assert checked.tags()["stillroom.compliance_missing"] == (
        "metrics: student.rmse; params: run.seed; tags: stillroom.gate; artifacts: model_card.md; "
        "datasets: no mlflow.data dataset inputs"
    )


def test_the_task_type_comes_from_the_run() -> None:
    """A regression record checked as binary would lack roc_auc: the run's own tag decides."""
    record = _complete_record("regression")
    assert check(record, get_plugin_manager().registry, "core").complete
    record.tags["stillroom.task_type"] = "binary"
    assert "student.roc_auc" in check(record, get_plugin_manager().registry, "core").missing["metrics"]


def test_a_run_judged_against_its_teacher_is_not_asked_for_teacher_or_baseline_scores() -> None:
    record = _complete_record("regression", reference="teacher")
    for name in [m for m in record.metrics if m.startswith(("teacher.", "baseline.", "gain.", "retention."))]:
        del record.metrics[name]
    assert check(record, get_plugin_manager().registry, "core").complete
    record.tags["stillroom.reference"] = "labels"
    assert "teacher.rmse" in check(record, get_plugin_manager().registry, "core").missing["metrics"]


def test_a_long_gap_list_fits_a_tag() -> None:
    checked = ComplianceCheck(("core",), {"metrics": [f"m{i:05d}" for i in range(2000)]})
    assert len(checked.tags()["stillroom.compliance_missing"]) == 4900


def _text(output: str) -> str:
    """Console output with the terminal's line wrapping undone."""
    return " ".join(output.split())


STRICT = ComplianceProfile(
    name="toy-strict",
    metrics=("student.rmse", "student.never_logged"),
    params=("run.seed",),
    artifacts=("toy/review.csv",),
    description="asks for a metric and an artifact no toy run logs",
)


@pytest.fixture
def strict_toy(tmp_path: Path, register_plugin: Any) -> Path:
    config = tmp_path / "toy.yaml"
    config.write_text(CONFIG.format(task="toy-regression", dataset="toy.regression", rule="fidelity.r2 >= 0.0"))
    register_plugin(ToyVertical(config, STRICT), "toy")
    return config


@pytest.mark.slow
def test_an_incomplete_run_is_tagged_printed_reported_and_promoted_only_with_override(
    strict_toy: Path, tracking_store: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["distill", "toy-regression", "--config", str(strict_toy)])
    assert result.exit_code == 0, result.output  # the run and its version are kept, for review
    assert "compliance: incomplete" in _text(result.output) and "student.never_logged" in result.output
    version = tracking.model_version_tags("toy-student", "1")
    run_id = version["stillroom.run_id"]
    missing = "metrics: student.never_logged; artifacts: toy/review.csv"
    assert tracking.run_record(run_id).tags["stillroom.compliance"] == "incomplete"
    assert version["stillroom.compliance"] == "incomplete" and version["stillroom.compliance_missing"] == missing

    approval = ["promote", "toy-student", "--version", "1", "--approver", "Ada Risk", "--reason", "pilot"]
    refused = runner.invoke(app, approval)
    assert refused.exit_code == 2 and "misses what its compliance profile requires" in _text(refused.output)
    assert "toy/review.csv" in _text(refused.output)
    assert not tracking.promotion_history("toy-student")
    ok = runner.invoke(app, [*approval, "--override", "metric added in the next release"])
    assert ok.exit_code == 0 and "compliance incomplete" in _text(ok.output)
    assert tracking.promotion_history("toy-student")[-1]["compliance"] == "incomplete"

    html = tmp_path / "review.html"
    assert runner.invoke(app, ["report", run_id, "--output", str(html)]).exit_code == 0
    page = html.read_text()
    assert 'data-compliance="incomplete"' in page
    assert "<code>metrics: student.never_logged</code>" in page and "<code>artifacts: toy/review.csv</code>" in page
