"""A tracking server that dies in the middle of a job: during a distillation's logging, at its
registration, and as a scoring job logs its run. The job ends with one error line (exit 2) and
publishes nothing; once the server is back, the next job's recovery closes what the dead
connection left open, and every invariant holds."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server.processes import stop_group, wait_healthy  # tests/server: the team server's process helpers

from stillroom import tracking
from stillroom_fraud.batch import make_batch

from .conftest import DISTILL
from .harness import ForkServer, Tally
from .invariants import violations

pytestmark = pytest.mark.slow


class TrackingServer:
    """``mlflow server`` on a SQLite file, started (again) on the same port and database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
        log = self.root / "mlflow-server.log"
        command = [exe, "server", "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}"]
        command += ["--default-artifact-root", (self.root / "artifacts").as_uri(), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1"]
        with open(log, "a") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(self.uri, self.proc, log, "mlflow server", timeout=300)

    def die(self) -> None:
        """SIGKILL to the server and its workers: no goodbye to its clients."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_group(self.proc)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    server = TrackingServer(tmp_path_factory.mktemp("server-faults"))
    server.start()
    yield server
    server.stop()


def test_a_tracking_server_that_dies_mid_job_leaves_nothing_half_done(
    mlflow_server: TrackingServer, monkeypatch: pytest.MonkeyPatch, record_property
) -> None:
    root, uri = mlflow_server.root, mlflow_server.uri
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "STILLROOM_CACHE_DIR": str(root / "cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    tracking.use_store(uri)
    fork = ForkServer(root, env)
    try:
        assert fork.run(DISTILL).code in (0, 3), (root / "fork-server.log").read_text()[-3000:]
        make_batch(1_500, seed=7, n_customers=150, n_terminals=300).to_parquet(root / "tonight.parquet", index=False)
        (root / "out").mkdir()
        score = ["score", "models:/fraud-student/latest", str(root / "tonight.parquet"), str(root / "out" / "scores.parquet")]
        score += ["--passthrough", "TRANSACTION_ID", "--no-progress", "--overwrite"]
        tally = Tally()
        for argv, at in (
            (DISTILL, "MLflow: logging the student model"),
            (DISTILL, "registry:"),
            (score, "MLflow: logging the scoring run"),
        ):
            out = fork.run(argv, at=at, on_boundary=mlflow_server.die)
            assert out.boundary is not None and out.code == 2, (at, out, (root / "fork-server.log").read_text()[-2000:])
            mlflow_server.start()
            tracking.recover(["stillroom-fraud", "stillroom-scoring"])  # what the next job does first
            tally.add(f"the server dying before {out.boundary!r}", violations([root / "out"]))
        assert not (root / "out" / "scores.parquet").exists()  # the scoring job published nothing
        tally.report(record_property)
        assert not tally.violations, "\n".join(tally.violations)
    finally:
        fork.close()
        tracking.use_store(None)
