"""An output path while a job writes it: locked, written under a pid-stamped partial name, and
published whole or not at all.

A nightly job is stopped by a scheduler (SIGTERM), a person (Ctrl+C) or the kernel (kill -9),
and started again; two schedulers sometimes start the same job twice. So:

* the output is locked while a job writes it (``flock`` on ``.<name>.lock`` beside it, released
  by the kernel when the writer dies, however it dies); a second job is refused with one line
  naming the writer's pid;
* the job writes ``.<name>.partial-<pid>-<random>``: a person who finds one knows which process
  wrote it; the next job on the same output, holding the lock, knows every partial file of that
  output was left by a dead writer and removes it;
* an existing output is refused unless the caller asks to overwrite it;
* :meth:`OutputSlot.publish` renames the finished file into place (the previous output moved
  aside first, so :meth:`OutputSlot.unpublish` can put it back if what must follow the rename
  fails), and on any failure or interruption the partial file is removed.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .._runtime import pid_alive
from ..errors import DataError, OutputError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class OutputSlot:
    """The right to write one output path (a file, or a directory of parts for Spark)."""

    def __init__(self, output: Path, overwrite: bool = False) -> None:
        self.output = Path(output)
        self.overwrite = overwrite
        self.partial = self.output.parent / f".{self.output.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
        self._lock_path = self.output.parent / f".{self.output.name}.lock"
        self._lock_fd: int | None = None
        self._aside: Path | None = None
        self.published = False
        self.removed_partials: list[Path] = []

    # --- claiming --------------------------------------------------------------------------

    def __enter__(self) -> OutputSlot:
        if not self.output.parent.is_dir():
            raise DataError(f"output directory {self.output.parent} does not exist")
        self._lock()
        try:
            self.removed_partials = self._remove_dead_partials()
            if self.output.exists() and not self.overwrite:
                raise OutputError(f"output {self.output} exists; pass --overwrite to replace it")
        except BaseException:
            self._unlock()
            raise
        return self

    def _lock(self) -> None:
        """``flock`` the lock file; retry if it was replaced between open and lock (its last
        holder unlinks it), so two jobs can never both believe they hold the lock."""
        while True:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise OutputError(
                    f"output {self.output} is being written by another job (pid {holder}); "
                    "wait for it to finish or choose another output path"
                ) from None
            if os.path.exists(self._lock_path) and os.path.samestat(os.fstat(fd), os.stat(self._lock_path)):
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                self._lock_fd = fd
                return
            os.close(fd)  # the file we locked was unlinked meanwhile: lock the new one

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            self._lock_path.unlink(missing_ok=True)  # while still held: the next job creates a fresh one
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _remove_dead_partials(self) -> list[Path]:
        """Partial files of this output. We hold its lock, so their writers are dead (the pid in
        the name is checked too, as a guard against a writer on a file system without flock)."""
        pattern = re.compile(rf"^\.{re.escape(self.output.name)}\.(partial|previous)-(\d+)-[0-9a-f]+$")
        removed = []
        for path in sorted(self.output.parent.iterdir()):
            match = pattern.match(path.name)
            if not match or (int(match.group(2)) != os.getpid() and pid_alive(int(match.group(2)))):
                continue
            if match.group(1) == "previous" and not self.output.exists():
                os.replace(path, self.output)  # killed between moving the old output aside and publishing
                continue
            _remove(path)
            removed.append(path)
        return removed

    # --- publishing ------------------------------------------------------------------------

    def publish(self) -> None:
        """Rename the partial output into place; a previous output is kept aside until
        :meth:`__exit__` (or put back by :meth:`unpublish`)."""
        if not self.partial.exists():
            raise DataError(f"nothing was written for {self.output}")
        if self.output.exists():
            self._aside = self.output.parent / f".{self.output.name}.previous-{os.getpid()}-{secrets.token_hex(4)}"
            os.replace(self.output, self._aside)
        os.replace(self.partial, self.output)
        self.published = True

    def unpublish(self) -> None:
        """Undo :meth:`publish`: the new output goes back to its partial name (then removed),
        the previous one, if any, returns."""
        if not self.published:
            return
        os.replace(self.output, self.partial)
        if self._aside is not None:
            os.replace(self._aside, self.output)
            self._aside = None
        self.published = False

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if exc_type is not None:
                self.unpublish()
            _remove(self.partial)
            if self._aside is not None:
                _remove(self._aside)
        finally:
            self._unlock()


@contextmanager
def claim(output: Path, slot: OutputSlot | None, overwrite: bool) -> Iterator[tuple[OutputSlot, bool]]:
    """``(slot, publish_here)``: the caller's claimed slot (the caller publishes), or a slot
    claimed here for the block, to be published by the block when it succeeds."""
    if slot is not None:
        yield slot, False
        return
    with OutputSlot(output, overwrite) as own:
        yield own, True
