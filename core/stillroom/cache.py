"""A disk cache of teacher outputs, keyed by teacher identity and data digest.

A teacher can be the slowest thing in the building (an ensemble, a graph net, a
published model). Its outputs on the transfer, validation and test rows are computed once and
kept, so that re-running a distillation with another recipe or student costs no teacher time,
and the teacher need not stay in memory while the student trains.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    return Path(os.environ.get("STILLROOM_CACHE_DIR", Path.home() / ".cache" / "stillroom"))


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
