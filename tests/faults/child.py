"""A fork server for the fault-injection suite: imports stillroom once, then runs each requested
``stillroom`` command in a forked child that stops at a chosen step boundary.

Why fork: a fresh interpreter spends seconds importing MLflow, pandas and LightGBM; the suite
injects dozens of faults, and the machine has two cores. Nothing touches MLflow before the fork.

Protocol (one JSON request per stdin line; replies on stdout, one per line):
``{"argv": [...], "at": N or TITLE, "cwd": DIR, "env": {...}, "go": FILE}`` ->
``PID <pid>``, then ``BOUNDARY <n> <phase> <title>`` when the child reaches the N-th step
boundary, or the first whose title starts with TITLE (it then waits there for a signal, or until
``go`` exists), then ``EXIT <pid> <status>``
(the exit code, or minus the number of the signal that killed it) and ``SEEN <pid> <count>`` for
an uninterrupted run (how many boundaries the command has).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time


class StopAt(logging.Handler):
    """Counts the step boundaries the ``stillroom`` logger announces; waits at the N-th."""

    def __init__(self, target: int | str, go: str, out: int) -> None:
        super().__init__(logging.DEBUG)
        self.target, self.go, self.out, self.seen = target, go, out, 0

    def emit(self, record: logging.LogRecord) -> None:
        phase = getattr(record, "stillroom_phase", None)
        if phase != "start":  # a boundary: just before a step begins (the previous one has ended)
            return
        self.seen += 1
        title = str(record.stillroom_step)  # type: ignore[attr-defined]
        wanted = title.startswith(self.target) if isinstance(self.target, str) else self.seen == self.target
        if not wanted:
            return
        self.target = -1  # once
        os.write(self.out, f"BOUNDARY {self.seen} {phase} {record.stillroom_step}\n".encode())  # type: ignore[attr-defined]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not os.path.exists(self.go):
            time.sleep(0.02)  # the parent's signal lands here


def run_child(request: dict, out: int) -> int:
    os.chdir(request["cwd"])
    os.environ.update(request["env"])
    handler = StopAt(request["at"], request["go"], out)
    logging.getLogger("stillroom").addHandler(handler)
    from stillroom.cli import app

    code = 0
    try:
        app(args=["-v", *request["argv"]], prog_name="stillroom", standalone_mode=True)
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    if request["at"] == 0:
        os.write(out, f"SEEN {os.getpid()} {handler.seen}\n".encode())
    return code


def serve() -> None:
    import stillroom.api  # noqa: F401  (everything the commands import, once)
    import stillroom.cli  # noqa: F401
    from stillroom.api import get_plugin_manager

    get_plugin_manager()  # the installed verticals, imported before forking
    out = sys.stdout.fileno()
    os.write(out, b"READY\n")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sys.stdin.close()
                code = run_child(request, out)
            finally:
                os._exit(code)
        os.write(out, f"PID {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        os.write(out, f"EXIT {pid} {code}\n".encode())


if __name__ == "__main__":
    serve()
