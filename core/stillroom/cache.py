"""A disk cache of teacher outputs (and of teachers a plugin trains), keyed by identity.

A teacher can be the slowest thing in the building (an ensemble, a graph net, a
published model). Its outputs on the transfer, validation and test rows are computed once and
kept, so that re-running a distillation with another recipe or student costs no teacher time,
and the teacher need not stay in memory while the student trains.

A cache that only grows fills a disk: every hit marks its entry as used (its modification
time), and :func:`prune` (``stillroom cache prune``) removes entries unused for a while or
the least recently used ones beyond a size budget. Only files stillroom writes are touched
(``teacher-*.npy``, ``model-*.joblib``, ``features/*.npy`` and interrupted ``*.partial``
writes), so a cache directory pointed at a shared folder never loses anything else.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

_run_cache_dir: ContextVar[Path | None] = ContextVar("stillroom_cache_dir", default=None)


def default_cache_dir() -> Path:
    """The run's ``run.cache_dir`` while a run uses one, else ``STILLROOM_CACHE_DIR``, else ``~/.cache/stillroom``."""
    return _run_cache_dir.get() or Path(os.environ.get("STILLROOM_CACHE_DIR", Path.home() / ".cache" / "stillroom"))


@contextmanager
def use_cache_dir(directory: str | Path | None) -> Iterator[None]:
    """Make ``directory`` the cache of everything inside the block (teacher outputs and models)."""
    token = _run_cache_dir.set(Path(directory) if directory else None)
    try:
        yield
    finally:
        _run_cache_dir.reset(token)


def cache_key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def cached_outputs(directory: Path | None, key: str | None, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """The cached array for ``key`` or ``compute()`` stored atomically; (array, was_cached).

    ``key=None`` disables caching (e.g. a teacher trained in this run: its identity is not
    stable across runs, so its outputs must not be reused).
    """
    if key is None or directory is None:
        return compute(), False
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"teacher-{key}.npy"
    if path.is_file():
        try:
            values = np.load(path, allow_pickle=False)
            mark_used(path)
            return values, True
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a corrupted entry is recomputed, never trusted
    values = np.asarray(compute(), dtype=float)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".partial")
    with os.fdopen(fd, "wb") as fh:
        np.save(fh, values, allow_pickle=False)
    os.replace(tmp, path)
    return values, False


def cached_model(directory: Path, key: str, fit: Callable[[], object]) -> tuple[object, bool]:
    """A trained model for ``key`` from disk, or ``fit()`` stored atomically; (model, was_cached).

    For teachers a plugin trains itself: the key covers parameters, seed and training data,
    so trying another recipe or student does not retrain an hour-long teacher. The files are
    joblib pickles written by this process into the user's own cache; an unreadable entry is
    refitted, never trusted.
    """
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"model-{key}.joblib"
    if path.is_file():
        try:
            model = joblib.load(path)
            mark_used(path)
            return model, True
        except Exception:  # corrupted or written by an incompatible library version
            path.unlink(missing_ok=True)
    model = fit()
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".partial")
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return model, False


# --------------------------------------------------------------------------- maintenance

PARTIAL_GRACE_SECONDS = 3600.0  # a younger .partial file may be a write in progress
_UNITS = {"": 1, "B": 1} | {p + s: 1 << (10 * (i + 1)) for i, p in enumerate("KMGT") for s in ("", "B")}  # binary units


@dataclass(frozen=True)
class CacheEntry:
    """One cached file: what it holds, its size and when it was last written or read."""

    path: Path
    kind: str  # teacher outputs | teacher model | features | partial write
    size: int
    last_used: float


def mark_used(path: Path) -> None:
    """Record a cache hit (the entry's modification time): what least-recently-used pruning reads."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache still serves hits; it is just not pruned by use


def _kind(path: Path) -> str | None:
    """What a file under the cache holds, from the names the writers above (and the molecules
    featuriser's ``features/``) give it; None for anything stillroom did not write."""
    name = path.name
    if name.endswith(".partial"):
        return "partial write"
    if name.startswith("teacher-") and name.endswith(".npy"):
        return "teacher outputs"
    if name.startswith("model-") and name.endswith(".joblib"):
        return "teacher model"
    if path.parent.name == "features" and name.endswith(".npy"):
        return "features"
    return None


def entries(directory: Path | None = None) -> list[CacheEntry]:
    """Every file stillroom wrote under the cache directory, oldest use first."""
    root = Path(directory) if directory is not None else default_cache_dir()
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob("*"):
        kind = _kind(path) if path.is_file() else None
        if kind is not None:
            st = path.stat()
            found.append(CacheEntry(path, kind, st.st_size, st.st_mtime))
    return sorted(found, key=lambda e: e.last_used)


def parse_size(text: str) -> int:
    """``500MB``, ``2GB``, ``1.5G``, ``300B`` -> bytes (binary units). The unit is required: a
    bare ``5`` meant 5 bytes, which empties a cache when 5 GB was meant."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if not match or unit not in _UNITS or not unit:
        raise ConfigError(f"size {text!r}: give a number with a unit (B, KB, MB, GB, TB), e.g. 500MB or 5GB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n: float) -> str:
    """Bytes for a person, in the binary units :func:`parse_size` reads: ``1.5 GB``, ``300 B``."""
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def prune(
    directory: Path | None = None,
    max_bytes: int | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> list[CacheEntry]:
    """Remove (or with ``dry_run`` only list) entries unused for ``older_than_days``, then the
    least recently used ones until the rest fits in ``max_bytes``; interrupted writes older
    than an hour always go. Returns what was (or would be) removed."""
    now = time.time() if now is None else now
    keep: list[CacheEntry] = []
    remove: list[CacheEntry] = []
    for entry in entries(directory):
        age = now - entry.last_used
        if entry.kind == "partial write":
            if age > PARTIAL_GRACE_SECONDS:  # abandoned; a younger one may be a write in progress: never touched
                remove.append(entry)
            continue
        (remove if older_than_days is not None and age > older_than_days * 86400 else keep).append(entry)
    if max_bytes is not None:
        total = sum(e.size for e in keep)
        while keep and total > max_bytes:  # oldest use first
            entry = keep.pop(0)
            remove.append(entry)
            total -= entry.size
    if not dry_run:
        for entry in remove:
            entry.path.unlink(missing_ok=True)
    return remove
