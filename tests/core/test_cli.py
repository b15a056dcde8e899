"""The read-only commands (what is installed, the resolved config: nothing is run or logged), and the
conventions a script relies on: one-line errors that keep their text, --json, --version, help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

import stillroom
import stillroom.errors
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


# --- conventions a script relies on ------------------------------------------------------------


def test_brackets_in_messages_survive(tracking_store: str) -> None:
    result = runner.invoke(app, ["distill", "fraud", "--print-config", "--set", "recipe[alpha]=0.5"])
    assert result.exit_code == 2 and "recipe[alpha]" in result.output, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_a_missing_optional_dependency_is_one_line_with_the_install_command(
    tracking_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if pyspark were not installed
    (tmp_path / "in.parquet").write_bytes(b"")
    result = runner.invoke(
        app, ["score", "models:/m/1", str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), "--engine", "spark"]
    )
    assert result.exit_code == 2, result.output
    assert result.output == (
        "error: --engine spark needs the Python package 'pyspark', which is not installed: pip install 'stillroom[spark]'\n"
    )


def test_a_server_that_never_answers_is_named_with_what_timed_out_and_after_how_long(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = runner.invoke(
            app,
            ["promote", "m", "--version", "1", "--approver", "a", "--reason", "r", "--tracking-uri", uri],
            env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "2"},
        )
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: tracking server {uri} did not answer its health check (GET /health) within 2 s (MLFLOW_HTTP_REQUEST_TIMEOUT)\n"
    )


def test_python_m_stillroom_version_and_help() -> None:
    version = subprocess.run([sys.executable, "-m", "stillroom", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout == f"stillroom {stillroom.__version__}\n" and stillroom.__version__ == "0.1.0"
    top = runner.invoke(app, ["--help"])
    assert "--install-completion" in top.output and "--version" in top.output  # shell completion is on
    help_text = runner.invoke(app, ["score", "--help"]).output
    assert "--passthrough COLUMN" in help_text and "--chunk-rows N" in help_text and "list[str]" not in help_text
    distill_help = " ".join(runner.invoke(app, ["distill", "--help"]).output.split())
    assert "--set KEY=VALUE" in distill_help
    assert "Exit status: 0 when the gate passed; 3 when it failed" in distill_help and "2 on an error" in distill_help


def test_json_on_the_commands_a_script_reads() -> None:
    for command in (["distill"], ["score"], ["promote"], ["verify"], ["report"], ["plugins"]):
        assert "--json" in runner.invoke(app, [*command, "--help"]).output, command


def test_a_library_call_is_quiet_and_gives_mlflow_state_back(tracking_store: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Checked on a call that fails early (an unknown model): the state must come back whatever happens;
    the whole distillation is checked in tests/e2e/test_fraud_run.py."""
    mlflow.set_experiment("caller")
    before_env, before_experiment = dict(os.environ), mlflow.tracking.fluent._active_experiment_id
    capfd.readouterr()  # the caller's own MLflow chatter so far
    with pytest.raises(stillroom.errors.ModelLoadError):
        stillroom.score("models:/absent/1", "in.csv", "out.csv")
    assert dict(os.environ) == before_env and mlflow.tracking.fluent._active_experiment_id == before_experiment
    assert capfd.readouterr().err == ""
