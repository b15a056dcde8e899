"""Server processes the system tests start (MLflow team server, ``stillroom ui``): wait until
they answer, stop them with everything they spawned."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 120) -> None:
    """Poll ``{url}/health`` until it answers 200; fail with the log's tail if ``proc`` exits or
    ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} not healthy after {timeout}s:\n{log.read_text()[-3000:]}", pytrace=False)


def stop_group(proc: subprocess.Popen, grace: float = 5) -> None:
    """SIGTERM to the process group (the server and its workers), SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
