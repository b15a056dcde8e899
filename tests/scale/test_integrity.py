"""Integrity at load: a registered student whose stored files changed is refused before anything
reads them, on the LightGBM and the compiled path, with one line naming the file; nothing is
written and no scoring run is logged. ``stillroom verify`` says the same on demand."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.contract.names import SCORING_EXPERIMENT

from .conftest import Registered, transactions

runner = CliRunner()


def _stored(registered: Registered, name: str) -> Path:
    """The file as the artifact store holds it (what a tamperer with access to the bucket changes)."""
    location = mlflow.get_logged_model(registered.model_id).artifact_location
    return Path(urlparse(location).path) / name


@contextmanager
def _tampered(path: Path, change: str) -> Iterator[None]:
    original = path.read_bytes()
    if change == "same length":  # one leaf value, one digit changed: the file keeps its size
        text = original.decode()
        leaf = re.search(r"leaf_value=(-?\d)", text)
        assert leaf is not None
        digit = leaf.group(1)[-1]
        start = leaf.end(1) - 1
        changed = text[:start] + ("1" if digit != "1" else "2") + text[start + 1 :]
        path.write_bytes(changed.encode())
        assert path.stat().st_size == len(original)
    else:  # truncated, as by a full disk or an interrupted copy
        path.write_bytes(original[: len(original) // 2])
    try:
        yield
    finally:
        path.write_bytes(original)


def _scoring_runs() -> int:
    experiment = mlflow.get_experiment_by_name(SCORING_EXPERIMENT)
    return 0 if experiment is None else len(mlflow.search_runs([experiment.experiment_id], output_format="list"))


@pytest.mark.parametrize("change", ["same length", "truncated"])
@pytest.mark.parametrize("engine", ["--compiled", "--no-compiled"])
def test_a_changed_model_file_is_refused_before_loading(registered: Registered, tmp_path: Path, change: str, engine: str) -> None:
    src, out = tmp_path / "batch.parquet", tmp_path / "scores.parquet"
    transactions(2000, seed=5).to_parquet(src, index=False)
    runs = _scoring_runs()
    with _tampered(_stored(registered, "model.lgb"), change):
        result = runner.invoke(app, ["score", registered.uri, str(src), str(out), "--passthrough", "TRANSACTION_ID", engine])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "file model.lgb differs from its sha256 recorded at registration" in lines[0], result.output
    assert "[Fatal]" not in result.output and "Traceback" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]
    assert _scoring_runs() == runs  # no record of a job that never happened
    fine = runner.invoke(app, ["score", registered.uri, str(src), str(out), "--passthrough", "TRANSACTION_ID", engine])
    assert fine.exit_code == 0, fine.output  # the same version, its files as registered


def test_verify_checks_a_version_on_demand(registered: Registered) -> None:
    good = runner.invoke(app, ["verify", registered.uri, "--json"])
    assert good.exit_code == 0, good.output
    report = json.loads(good.output)
    assert report["verified"] and {"model.lgb", "MLmodel", "compiled/student.o"} <= {f["path"] for f in report["files"]}
    with _tampered(_stored(registered, "compiled/student.o"), "truncated"):
        bad = runner.invoke(app, ["verify", registered.uri])
    assert bad.exit_code == 2 and "error: scale-student v1: file compiled/student.o is changed" in bad.output, bad.output
