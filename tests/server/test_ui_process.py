"""``stillroom ui`` runs the MLflow server in its own place: the pid a script started is the
server's, and stopping it stops the server and its workers (the port is free again)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .processes import wait_healthy

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_stopping_stillroom_ui_by_its_pid_stops_the_server(tmp_path: Path) -> None:
    port, log = _free_port(), tmp_path / "ui.log"
    exe = str(Path(sys.executable).with_name("stillroom"))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [exe, "ui", "--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, "stillroom ui", timeout=300)
        assert "mlflow" in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()  # exec: the pid is MLflow's
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{url}/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
