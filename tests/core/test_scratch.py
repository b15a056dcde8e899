"""Temporary folders: removed by their own process, and after a SIGKILL by the next job."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from stillroom.scratch import OWNER, scratch_dir, sweep_orphans

HOLDER = """
import sys, tempfile, time
tempfile.tempdir = sys.argv[1]
from stillroom.scratch import scratch_dir
with scratch_dir("run") as folder:
    print(folder, flush=True)
    time.sleep(600)
"""


def _holder(root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process in the middle of a job: it holds one scratch folder and waits."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_jobs_folder_is_swept_and_a_live_jobs_folder_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed, orphan = _holder(tmp_path)
    alive, busy = _holder(tmp_path)
    try:
        (orphan / "student.pt").write_bytes(b"\0" * 1024)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert (orphan.parent / OWNER).is_file()  # SIGKILL: the process cleaned nothing
        (tmp_path / "stillroom-someone-else").mkdir()  # no lock file: nothing says whose it is
        assert sweep_orphans() == 1
        assert not orphan.parent.exists() and busy.is_dir() and (tmp_path / "stillroom-someone-else").is_dir()
        with scratch_dir("mine") as mine:  # this process's own live folder, empty for the caller
            assert sweep_orphans() == 0 and Path(mine).is_dir() and not any(Path(mine).iterdir())
        assert not Path(mine).exists()  # removed on a normal exit
    finally:
        alive.send_signal(signal.SIGKILL)
        alive.wait()
    assert sweep_orphans() == 1 and not busy.parent.exists()
