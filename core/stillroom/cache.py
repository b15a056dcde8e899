"""A disk cache of teacher outputs (and of teachers a plugin trains), keyed by identity.

A teacher can be the slowest thing in the building (an ensemble, a graph net, a
published model). Its outputs on the transfer, validation and test rows are computed once and
kept, so that re-running a distillation with another recipe or student costs no teacher time,
and the teacher need not stay in memory while the student trains.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

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
            return np.load(path, allow_pickle=False), True
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
            return joblib.load(path), True
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
