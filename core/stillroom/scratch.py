"""The temporary folders of a stillroom process, and the ones a killed process left behind.

Why: a run works in temporary folders (its artifacts before logging, a downloaded model, a
search's trials) and removes them when it ends, on an error or an interrupt too. A process
killed with SIGKILL (a scheduler's timeout, the OOM killer) cannot: its folders stay, and a
scoring host where that happens now and then fills its temp folder. So each folder holds an
exclusive lock (``flock``) on a file inside it for as long as its process lives; the kernel
drops the lock when the process dies however it dies, and the next stillroom job removes the
folders whose lock it can take. A pid in the name would not do: a container's pid means
nothing in the next container that shares ``/tmp``, a lock does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # not POSIX: folders are still removed on a normal exit, not swept after a kill
    fcntl = None  # type: ignore[assignment]

PREFIX = "stillroom-"
OWNER = ".stillroom-owner"  # the locked file inside each folder


@contextmanager
def scratch_dir(kind: str) -> Iterator[str]:
    """An empty temporary folder (``work`` in ``stillroom-<kind>-*``, beside the lock file) for
    this process, removed when the block ends and, if the process is killed first, by the next
    job's :func:`sweep_orphans`."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{kind}-") as folder:
        owner = _hold(Path(folder) / OWNER)
        work = Path(folder) / "work"  # the caller's folder holds only what the caller puts there (a
        work.mkdir()  # downloaded model is checked file by file: the lock file must not be among them)
        try:
            yield str(work)
        finally:
            if owner is not None:
                owner.close()


def sweep_orphans() -> int:
    """Remove the folders of stillroom processes that are gone (their lock is free); how many.

    Folders without the lock file (made by another tool, or by an older stillroom) are left
    alone: nothing says whose they are."""
    if fcntl is None:
        return 0
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        lock_file = folder / OWNER
        if not lock_file.is_file():
            continue
        try:
            with lock_file.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken: its process is gone
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except (BlockingIOError, PermissionError, FileNotFoundError):
            continue  # alive, someone else's, or removed meanwhile by another sweeping job
    return removed


def _hold(path: Path) -> IO[str] | None:
    """Open ``path`` and lock it for the life of this process (None without ``fcntl``)."""
    if fcntl is None:
        return None
    handle = path.open("w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(f"{os.getpid()}\n")  # for a human looking at the folder; the lock is what counts
    handle.flush()
    return handle
