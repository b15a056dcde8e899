"""Crash-safe outputs with real processes and real signals: a second job on a locked output is
refused, a killed writer's partial file is removed by the next job, SIGTERM cleans up like
SIGINT, and an existing output is replaced only when asked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stillroom.errors import OutputError
from stillroom.scoring.batch import score_file
from stillroom.scoring.formats import ColumnSpec
from stillroom.scoring.output import OutputSlot

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from stillroom.interrupts import handling_signals
    from stillroom.scoring.output import OutputSlot

    with handling_signals(), OutputSlot(Path(sys.argv[1]), overwrite=True) as slot:
        slot.partial.write_bytes(b"half a result")
        print("writing", flush=True)
        time.sleep(120)
    """
)


def _writer(output: Path) -> subprocess.Popen[str]:
    """A process holding ``output`` and halfway through writing it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(output)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_second_job_on_a_locked_output_is_refused_with_the_writers_pid(tmp_path: Path) -> None:
    output = tmp_path / "scores.parquet"
    proc = _writer(output)
    try:
        with pytest.raises(OutputError, match=rf"being written by another job \(pid {proc.pid}\)"), OutputSlot(output):
            pass
        partial = [name for name in _leftovers(tmp_path) if ".partial-" in name]
        assert len(partial) == 1 and partial[0].startswith(f".scores.parquet.partial-{proc.pid}-")  # the live writer's: kept
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigterm_and_sigint_leave_nothing_behind(tmp_path: Path, sig: int) -> None:
    proc = _writer(tmp_path / "scores.parquet")
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=60) != 0
    assert _leftovers(tmp_path) == []


def test_kill_9_then_rerun_leaves_no_partial_file(tmp_path: Path) -> None:
    output = tmp_path / "scores.parquet"
    proc = _writer(output)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(name.startswith(f".scores.parquet.partial-{proc.pid}-") for name in _leftovers(tmp_path))  # what kill -9 leaves
    frame = pd.DataFrame({"x": np.arange(10.0)})
    frame.to_parquet(tmp_path / "in.parquet")
    spec = [ColumnSpec("x", "double")]
    summary = score_file(lambda f: np.full(len(f), 0.5), tmp_path / "in.parquet", output, spec, progress=False)
    assert summary.rows == 10 and len(summary.output_digest) == 64
    assert _leftovers(tmp_path) == [] and pd.read_parquet(output)["score"].tolist() == [0.5] * 10


def test_an_existing_output_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(5.0)})
    frame.to_parquet(tmp_path / "in.parquet")
    output = tmp_path / "scores.csv"
    output.write_text("yesterday\n")
    spec = [ColumnSpec("x", "double")]
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        score_file(lambda f: np.zeros(len(f)), tmp_path / "in.parquet", output, spec, progress=False)
    assert output.read_text() == "yesterday\n"
    score_file(lambda f: np.zeros(len(f)), tmp_path / "in.parquet", output, spec, progress=False, overwrite=True)
    assert pd.read_csv(output)["score"].tolist() == [0.0] * 5 and _leftovers(tmp_path) == []


def test_the_cli_refuses_an_existing_output_in_one_line(tracking_store: str, tmp_path: Path) -> None:
    from stillroom.cli import app

    (tmp_path / "scores.parquet").write_text("yesterday")
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = CliRunner().invoke(app, ["score", "models:/absent/1", str(tmp_path / "in.csv"), str(tmp_path / "scores.parquet")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "scores.parquet exists; pass --overwrite to replace it" in result.output
