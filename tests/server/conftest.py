"""A real team server for the module: PostgreSQL (throwaway cluster) + ``stillroom server start``
(MLflow with served artifacts and the basic-auth app), and its users."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .postgres import Cluster, free_port, postgres_cluster
from .processes import stop_group, wait_healthy

ADMIN = ("admin", "admin-Secret-1")
USERS = {"alice": "alice-Secret-1", "bob": "bob-Secret-1", "carol": "carol-Secret-1"}


@dataclass(frozen=True)
class TeamServer:
    url: str
    cluster: Cluster
    artifacts: Path
    log: Path

    def env(self, user: str | None) -> dict[str, str]:
        """The environment of a client acting as ``user`` (None: no credentials at all)."""
        env = {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_REGISTRY_URI": self.url}
        if user is None:
            return env | {"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": ""}
        password = ADMIN[1] if user == ADMIN[0] else USERS[user]
        return env | {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_cluster(("mlflow", "mlflow_auth")) as c:
        yield c


@pytest.fixture(scope="module")
def team_server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServer]:
    """What a platform team runs: an auth config from the template, then ``stillroom server start``."""
    root = tmp_path_factory.mktemp("team-server")
    stillroom = str(Path(sys.executable).with_name("stillroom"))
    auth_ini = root / "basic_auth.ini"
    subprocess.run(
        [stillroom, "server", "auth-config", "--database-uri", cluster.uri("mlflow_auth"), "--output", str(auth_ini)], check=True
    )
    port = free_port()
    env = os.environ | {
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
    }
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(key, None)
    log = root / "server.log"
    cmd = [
        stillroom, "server", "start",
        "--backend-store-uri", cluster.uri("mlflow"),
        "--artifacts-destination", str(root / "artifacts"),
        "--auth-config", str(auth_ini),
        "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, "team server")
        server = TeamServer(url, cluster, root / "artifacts", log)
        _create_users(server)
        yield server
    finally:
        stop_group(proc)


def _create_users(server: TeamServer) -> None:
    """The admin creates the team: alice (data scientist), bob (no grants), carol (approver)."""
    from mlflow.server import get_app_client

    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.env(ADMIN[0]).items():
            mp.setenv(key, value)
        auth = get_app_client("basic-auth", tracking_uri=server.url)
        for name, password in USERS.items():
            auth.create_user(username=name, password=password)
