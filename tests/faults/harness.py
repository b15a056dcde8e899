"""Injecting faults into real ``stillroom`` commands: a fork server runs each command in its own
process (:mod:`.child`), stopped at a step boundary, where the test sends it a real signal with
``os.kill`` (or kills its tracking server); then the invariants are read from the store and the
file system (:mod:`.invariants`)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHILD = Path(__file__).with_name("child.py")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
EXPECTED_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


@dataclass
class Outcome:
    pid: int = 0
    code: int | None = None
    boundary: str | None = None  # the title of the step it was stopped before
    seen: int | None = None  # boundaries of an uninterrupted run


class ForkServer:
    """One ``child.py`` process; :meth:`run` forks a command from it and waits for it."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.log = open(workdir / "fork-server.log", "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
            cwd=workdir,
            env={**os.environ, **env},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._next(600) == "READY", (workdir / "fork-server.log").read_text()[-3000:]
        self.requests = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("CLOSED")

    def _next(self, timeout: float) -> str:
        line = self.lines.get(timeout=timeout)
        if line == "CLOSED":
            raise RuntimeError("fork server died: " + (self.workdir / "fork-server.log").read_text()[-3000:])
        return line

    def run(
        self,
        argv: list[str],
        at: int | str = 0,
        sig: int | None = None,
        on_boundary: Callable[[], None] | None = None,
        timeout: float = 900,
    ) -> Outcome:
        """Run ``stillroom ARGV``; at boundary ``at`` send ``sig`` or call ``on_boundary``, then let it go on."""
        self.requests += 1
        go = self.workdir / f"go-{self.requests}"
        request = {"argv": argv, "at": at, "cwd": str(self.workdir), "env": self.env, "go": str(go)}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        out = Outcome()
        while True:
            kind, _, rest = self._next(timeout).partition(" ")
            if kind == "PID":
                out.pid = int(rest)
            elif kind == "BOUNDARY":
                out.boundary = rest.split(" ", 2)[2]
                if sig is not None:
                    os.kill(out.pid, sig)
                if on_boundary is not None:
                    on_boundary()
                go.touch()
            elif kind == "SEEN":
                out.seen = int(rest.split()[1])
            elif kind == "EXIT":
                out.code = int(rest.split()[1])
                return out

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


@dataclass
class Tally:
    """Faults injected and invariants violated, for the suite's report."""

    faults: int = 0
    violations: list[str] = field(default_factory=list)

    def add(self, what: str, found: list[str]) -> None:
        self.faults += 1
        self.violations += [f"after {what}: {v}" for v in found]

    def report(self, record_property: Callable[[str, object], None]) -> None:
        record_property("stillroom_faults", self.faults)
        record_property("stillroom_violations", len(self.violations))


def fault_matrix(boundaries: int) -> list[tuple[int, int]]:
    """(boundary, signal) pairs to inject. Every boundary gets a fault, the three signals taking
    turns; ``STILLROOM_FAULTS_FULL=1`` injects all three at every boundary (three times as long)."""
    full = os.environ.get("STILLROOM_FAULTS_FULL") == "1"
    return [
        (at, sig)
        for at in range(1, boundaries + 1)
        for i, sig in enumerate(SIGNALS)
        if full or i == at % len(SIGNALS) or at == boundaries  # the last boundary (registration) gets all three
    ]


Check = Callable[[], list[str]]


def inject_everywhere(
    server: ForkServer, argv: list[str], boundaries: int, tally: Tally, check: Check, next_job: Callable[[], None]
) -> list[str]:
    """Every fault of :func:`fault_matrix` on ``stillroom ARGV``, each followed by the invariant
    ``check`` (after a SIGKILL, once ``next_job`` ran: what the next job does first); returns the
    titles of the boundaries reached."""
    reached = []
    for at, sig in fault_matrix(boundaries):
        out = server.run(argv, at=at, sig=sig)
        assert out.boundary is not None and out.code == EXPECTED_EXIT[sig], (at, sig, out)
        reached.append(out.boundary)
        if sig == signal.SIGKILL:
            next_job()
        tally.add(f"{signal.Signals(sig).name} before {out.boundary!r}", check())
    return reached
