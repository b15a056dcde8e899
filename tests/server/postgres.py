"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temp dir, on a free port.

PostgreSQL refuses to run as root (CI is root), so as root the cluster is owned by and run
as the ``postgres`` system user the Debian package creates. The socket lives in the cluster's
own directory and the port is free, so a system cluster on 5432 is never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SKIP_ENV = "STILLROOM_SKIP_SYSTEM_TESTS"


def require_binary(name: str, package: str, candidates: tuple[str, ...] = ()) -> str:
    """The path of a system binary, or a test failure that says how to install it.

    Skipping would hide a CI machine without the package; only an explicit opt-out skips.
    """
    found = [shutil.which(name)] + [p for pattern in candidates for p in sorted(glob.glob(pattern), reverse=True)]
    for path in found:
        if path and os.access(path, os.X_OK):
            return path
    message = f"{name} not found: install the Debian package {package!r} (make sysdeps does, as root)"
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{message}; skipped because {SKIP_ENV}=1")
    pytest.fail(message, pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Cluster:
    port: int
    user: str
    password: str

    def uri(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


@contextmanager
def postgres_cluster(databases: tuple[str, ...]) -> Iterator[Cluster]:
    """Start a private cluster with password auth over TCP and the given databases; stop and delete it after."""
    pg_bin = Path(require_binary("initdb", "postgresql", ("/usr/lib/postgresql/*/bin/initdb",))).resolve().parent
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="stillroom-pg-"))  # directly under /tmp: reachable by the postgres user
    data, pwfile = root / "data", root / "pw"
    password = "stillroom-test"
    pwfile.write_text(password + "\n")
    if owner:
        shutil.chown(root, owner)
        shutil.chown(pwfile, owner)
    port = free_port()
    log = root / "server.log"
    run = lambda cmd: subprocess.run(_as_owner(cmd, owner), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "stillroom",
                f"--pwfile={pwfile}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
            ]
        )
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"])
        env = os.environ | {"PGPASSWORD": password}
        for db in databases:
            subprocess.run(
                [str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "stillroom", db],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
        yield Cluster(port=port, user="stillroom", password=password)
    except subprocess.CalledProcessError as exc:
        tail = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {exc.cmd}\n{exc.stderr}\n{tail}", pytrace=False)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_owner([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner), capture_output=True
            )
        shutil.rmtree(root, ignore_errors=True)
