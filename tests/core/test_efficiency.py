"""Efficiency figures: latency, throughput ordering, CPU cost, serialized size.

Bounds are deliberately one-sided or generous: CI machines are noisy, and a sleep can only
take longer than asked, never shorter.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.distillation.efficiency import Efficiency, measure_efficiency, serialized_size


def _fast(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float64).sum(axis=1)


def _slow(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Busy per-row work, so it is slower in both wall and CPU time."""
    values = np.asarray(X, dtype=np.float64)
    return np.array([sum(float(v) ** 2 for v in row) for row in values])


def _batch(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"f{i}" for i in range(8)])


def test_latency_of_a_sleeping_model_is_at_least_its_sleep() -> None:
    def sleepy(X: pd.DataFrame) -> np.ndarray:
        time.sleep(0.002)
        return np.zeros(len(X))

    eff = measure_efficiency(sleepy, _batch(50), latency_repeats=20, throughput_repeats=1)
    assert eff.latency_p50_ms >= 2.0
    assert eff.latency_p99_ms >= eff.latency_p50_ms
    assert eff.latency_p50_ms < 200.0
    assert eff.latency_calls == 20


def test_fast_model_has_higher_throughput_than_slow_one() -> None:
    X = _batch()
    fast = measure_efficiency(_fast, X, latency_repeats=10)
    slow = measure_efficiency(_slow, X, latency_repeats=10)
    assert fast.rows_per_second > 0 and slow.rows_per_second > 0
    assert fast.rows_per_second > slow.rows_per_second
    assert slow.cpu_seconds_per_million > fast.cpu_seconds_per_million > 0


def test_numpy_batch_latency_rows_and_metrics() -> None:
    X = _batch(100).to_numpy()
    seen: list[int] = []

    def model(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return _fast(batch)

    eff = measure_efficiency(model, X, latency_rows=5, latency_repeats=10, throughput_repeats=2)
    assert isinstance(eff, Efficiency)
    assert eff.batch_rows == 100 and eff.latency_rows == 5
    assert seen.count(5) >= 10  # warmup + latency calls all use 5-row slices
    metrics = eff.as_metrics("student")
    assert metrics["student.latency_p50_ms"] == eff.latency_p50_ms
    assert {"student.rows_per_second", "student.cpu_seconds_per_million", "student.batch_rows"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())


def test_max_rows_subsamples_the_batch() -> None:
    eff = measure_efficiency(_fast, _batch(1000), max_rows=100, latency_repeats=5)
    assert eff.batch_rows == 100


def test_slow_full_batch_is_not_repeated_past_the_time_budget() -> None:
    calls: list[int] = []

    def slow_batch(X: pd.DataFrame) -> np.ndarray:
        calls.append(len(X))
        if len(X) > 1:
            time.sleep(0.05)
        return np.zeros(len(X))

    eff = measure_efficiency(slow_batch, _batch(10), throughput_repeats=50, latency_repeats=5, max_seconds=0.08)
    assert eff.throughput_calls < 50
    assert calls.count(10) == eff.throughput_calls


def test_empty_batch_and_bad_repeats_raise() -> None:
    with pytest.raises(ValueError):
        measure_efficiency(_fast, _batch(0))
    with pytest.raises(ValueError):
        measure_efficiency(_fast, _batch(10), latency_repeats=0)


def test_serialized_size_of_dir_file_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights.bin").write_bytes(b"y" * 250)
    assert serialized_size(tmp_path) == 350
    assert serialized_size(str(tmp_path / "model.txt")) == 100
    assert serialized_size(b"abc") == 3
    assert serialized_size(bytearray(7)) == 7


def test_serialized_size_rejects_missing_paths_and_objects(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        serialized_size(tmp_path / "missing")
    with pytest.raises(TypeError):
        serialized_size(object())  # type: ignore[arg-type]
