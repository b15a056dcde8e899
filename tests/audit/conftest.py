"""One real distillation, promoted through the CLI, shared by the report and browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import SMALL
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.testing import temporary_store


@pytest.fixture(scope="package")
def audit_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow SQLite store in a temp dir, for this package's tests."""
    with temporary_store(tmp_path_factory.mktemp("audit-store")) as uri:
        yield uri


@pytest.fixture(scope="package")
def promoted(audit_store: str) -> dict[str, Any]:
    """Distill the fraud vertical, then promote version 1 with an approver, a reason and (if the
    gate failed) an override, all through the CLI a team would use."""
    import mlflow

    runner = CliRunner()
    result = runner.invoke(app, ["distill", "fraud", *[a for o in SMALL for a in ("--set", o)]])
    assert result.exit_code in (0, 3), result.output  # 3: the gate failed, the run is kept for review
    run = mlflow.search_runs(
        experiment_names=["stillroom-fraud"], filter_string="tags.`stillroom.role` = 'distillation'", output_format="list"
    )[0]
    gate = run.data.tags["stillroom.gate"]
    assert result.exit_code == (0 if gate == "passed" else 3), result.output
    override = [] if gate == "passed" else ["--override", "pilot approved by the model-risk committee"]
    approval = ["--approver", "Ada Risk", "--reason", "MRM-2291 quarterly review"]
    result = runner.invoke(app, ["promote", "fraud-student", "--version", "1", *approval, *override])
    assert result.exit_code == 0, result.output
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "gate": gate,
        "metrics": dict(run.data.metrics),
        "override": override[1] if override else "",
        "root": Path(audit_store.removeprefix("sqlite:///")).parent,
    }
