"""The read-only commands: what is installed, and the resolved config (nothing is run or logged)."""

from __future__ import annotations

import json

import mlflow
import yaml
from typer.testing import CliRunner

from stillroom.cli import app

runner = CliRunner()


def test_plugins_lists_verticals_versions_and_hooks() -> None:
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    inventory = json.loads(result.output)
    fraud = next(p for p in inventory["plugins"] if p["name"] == "fraud")
    assert (fraud["distribution"], fraud["version"], fraud["error"]) == ("stillroom-fraud", "0.1.0", None)
    assert {"stillroom_teachers", "stillroom_students", "stillroom_compliance_profiles"} <= set(fraud["hooks"])
    assert "fraud" in inventory["tasks"]
    table = runner.invoke(app, ["plugins"])  # the human view of the same inventory
    assert table.exit_code == 0 and "stillroom-fraud" in table.output and "tasks: fraud" in table.output


def test_print_config_shows_the_resolved_config_and_runs_nothing(tracking_store: str) -> None:
    long_path = "/data/" + "exports/" * 20 + "transactions.parquet"  # longer than any terminal: must not wrap
    args = ["--set", "recipe.alpha=0.5", "--set", "run.seed=3", "--set", f"data.path={long_path}"]
    result = runner.invoke(app, ["distill", "fraud", "--print-config", *args])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["task"] == "fraud" and resolved["recipe"]["alpha"] == 0.5 and resolved["run"]["seed"] == 3
    assert resolved["student"]["params"]["max_bin"] == 4095  # the vertical's default, merged in
    assert resolved["data"]["path"] == long_path
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
