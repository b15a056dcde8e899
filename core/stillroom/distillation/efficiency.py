"""Efficiency figures of any model: latency, throughput, CPU cost, serialized size.

Why: the product's promise is a student that is much smaller, faster and cheaper than its
teacher ("90% less energy"). A reviewer must see those claims measured the same way for
teacher and student, so this module only needs a ``predict(X)`` callable and a batch, and
knows nothing about the model family.

CPU time is the energy proxy: ``time.process_time`` counts the CPU seconds of *all threads
of this process* (BLAS, OpenMP, LightGBM, torch intra-op threads), so a model that spreads
work over 8 cores is charged for 8 cores, not for the wall time. It does not see work done
in other processes (a model server, a subprocess pool).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

__all__ = ["Efficiency", "measure_efficiency", "serialized_size"]

Batch: TypeAlias = pd.DataFrame | np.ndarray
Predict = Callable[[Any], Any]

# A single timed measurement shorter than this is dominated by clock resolution and call
# overhead, so fast batches are predicted several times per measurement (as timeit does).
_MIN_MEASURE_SECONDS = 0.05


@dataclass(frozen=True)
class Efficiency:
    """Efficiency of one model on one batch; every field is a plain float for MLflow."""

    latency_p50_ms: float
    latency_p99_ms: float
    rows_per_second: float
    cpu_seconds_per_million: float
    batch_rows: int
    latency_rows: int
    latency_calls: int
    throughput_calls: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Flat ``{f"{prefix}.{field}": value}`` metrics, ready for ``mlflow.log_metrics``."""
        return {f"{prefix}.{name}": float(value) for name, value in asdict(self).items()}


def measure_efficiency(
    predict: Predict,
    X: Batch,
    *,
    latency_rows: int = 1,
    latency_repeats: int = 200,
    throughput_repeats: int = 3,
    warmup: int = 1,
    max_seconds: float = 30.0,
    max_rows: int | None = None,
    seed: int = 0,
) -> Efficiency:
    """Measure ``predict`` on ``X``: small-call latency, batch throughput and CPU cost.

    Latency is the wall time of ``latency_repeats`` calls on ``latency_rows`` random
    consecutive rows (the online-scoring view); throughput is the best of
    ``throughput_repeats`` full-batch calls (best, because slower runs measure the noise of
    the machine, not the model); CPU seconds per million rows come from the same calls.

    Time is bounded: each phase stops repeating once it has spent ``max_seconds`` (one call
    is always made), so a slow teacher costs about one full-batch call plus ``2 *
    max_seconds``. ``max_rows`` subsamples ``X`` (seeded by ``seed``) beforehand.
    """
    X = _subsample(X, max_rows, seed)
    n = len(X)
    if n == 0:
        raise ValueError("measure_efficiency: the batch X has no rows")
    if latency_repeats < 1 or throughput_repeats < 1 or latency_rows < 1:
        raise ValueError("measure_efficiency: repeats and latency_rows must be >= 1")
    rows = min(latency_rows, n)
    for _ in range(max(warmup, 0)):
        predict(_rows(X, 0, rows))
    wall, cpu, calls = _throughput(predict, X, throughput_repeats, max_seconds)
    latencies = _latencies(predict, X, rows, latency_repeats, max_seconds, seed)
    return Efficiency(
        latency_p50_ms=float(np.percentile(latencies, 50) * 1e3),
        latency_p99_ms=float(np.percentile(latencies, 99) * 1e3),
        rows_per_second=n / wall,
        cpu_seconds_per_million=cpu / n * 1e6,
        batch_rows=n,
        latency_rows=rows,
        latency_calls=len(latencies),
        throughput_calls=calls,
    )


def serialized_size(obj_or_path: bytes | bytearray | memoryview | str | os.PathLike[str]) -> int:
    """Bytes on disk of a saved model (file, or directory summed recursively) or a buffer.

    Size is measured on the native serialized form the model is logged in, not on a pickle
    of the Python object, because that is what a scoring job ships and loads.
    """
    if isinstance(obj_or_path, (bytes, bytearray, memoryview)):
        return memoryview(obj_or_path).nbytes
    if not isinstance(obj_or_path, (str, os.PathLike)):
        raise TypeError(f"serialized_size: expected bytes or a path, got {type(obj_or_path).__name__}")
    path = Path(obj_or_path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    raise FileNotFoundError(f"serialized_size: no such file or directory: {path}")


def _rows(X: Batch, start: int, count: int) -> Batch:
    """``count`` consecutive rows from ``start``, as the same type the model expects."""
    return X.iloc[start : start + count] if isinstance(X, pd.DataFrame) else X[start : start + count]


def _subsample(X: Batch, max_rows: int | None, seed: int) -> Batch:
    """A seeded random subset of at most ``max_rows`` rows, in original order."""
    if max_rows is None or len(X) <= max_rows:
        return X
    keep = np.sort(np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False))
    return X.iloc[keep] if isinstance(X, pd.DataFrame) else X[keep]


def _timed(predict: Predict, X: Batch, number: int) -> tuple[float, float]:
    """Wall and process-CPU seconds per call, averaged over ``number`` back-to-back calls."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(number):
        predict(X)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall / number, cpu / number


def _throughput(predict: Predict, X: Batch, repeats: int, max_seconds: float) -> tuple[float, float, int]:
    """Best wall and CPU seconds per full-batch call, and the number of calls made.

    The first call sizes the rest: a fast batch is looped so each measurement lasts at least
    ``_MIN_MEASURE_SECONDS``; a slow one gets fewer repeats so the phase fits ``max_seconds``.
    """
    wall, cpu = _timed(predict, X, 1)
    number = max(1, math.ceil(_MIN_MEASURE_SECONDS / max(wall, 1e-9)))
    # The sizing call counts only when it was long enough to be measured on its own.
    walls, cpus = ([wall], [cpu]) if number == 1 else ([], [])
    spent, calls = wall, 1
    while len(walls) < repeats and (not walls or spent + wall * number <= max_seconds):
        w, c = _timed(predict, X, number)
        walls.append(w)
        cpus.append(c)
        spent, calls = spent + w * number, calls + number
    return max(min(walls), 1e-9), min(cpus), calls


def _latencies(predict: Predict, X: Batch, rows: int, repeats: int, max_seconds: float, seed: int) -> np.ndarray:
    """Wall seconds of single small calls on random rows, stopping at the time budget."""
    starts = np.random.default_rng(seed).integers(0, len(X) - rows + 1, size=repeats)
    slices = [_rows(X, int(i), rows) for i in starts]  # sliced up front: not part of latency
    out: list[float] = []
    deadline = time.perf_counter() + max_seconds
    for part in slices:
        t0 = time.perf_counter()
        predict(part)
        t1 = time.perf_counter()
        out.append(t1 - t0)
        if t1 > deadline:
            break
    return np.asarray(out)
