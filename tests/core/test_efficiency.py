"""Efficiency figures: latency, throughput ordering, CPU cost, serialized size.

Bounds are deliberately one-sided or generous: CI machines are noisy, and a sleep can only
take longer than asked, never shorter.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from stillroom.contract import config as cfg
from stillroom.contract import inference_threads
from stillroom.distillation.cores import WaitClock
from stillroom.distillation.efficiency import Efficiency, Interleaved, measure_efficiency, measure_interleaved, serialized_size
from stillroom.distillation.pipeline import efficiency_metrics
from stillroom.errors import ConfigError
from stillroom_fraud.config import FraudConfig


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


# --------------------------------------------------------------------------- interleaved timing


def _sleeper(seconds: float):  # noqa: ANN202
    def predict(X: pd.DataFrame) -> np.ndarray:
        time.sleep(seconds)
        return np.zeros(len(X))

    return predict


def test_interleaved_rounds_time_every_model_once_each_round_in_rotating_order() -> None:
    models = {role: {"predict": _fast} for role in ("teacher", "student", "baseline")}
    timing = measure_interleaved(models, _batch(200), batch_rows=50, rounds=4, latency_calls=12)
    assert timing.rounds == 4 and timing.rows == {"batch_1": 1, "batch_n": 50}
    assert [o[0] for o in timing.order] == ["teacher", "student", "baseline", "teacher"]
    assert all(sorted(o) == ["baseline", "student", "teacher"] for o in timing.order)
    for role in models:
        assert len(timing.seconds["predict"][role]["batch_1"]) == len(timing.seconds["predict"][role]["batch_n"]) == 4
        assert len(timing.single_calls["predict"][role]) == 4 * 3  # 12 calls spread over 4 rounds
    assert len(timing.load["before"]) == 3 and timing.wall_seconds > 0


def test_a_teacher_that_sleeps_is_slower_than_its_student_in_every_round() -> None:
    """One-sided: a sleep only takes longer than asked, so the teacher's call is at least 5 ms."""
    models = {"teacher": {"predict": _sleeper(0.005)}, "student": {"predict": _fast}}
    timing = measure_interleaved(models, _batch(100), batch_rows=20, rounds=3, latency_calls=9)
    assert min(timing.seconds["predict"]["teacher"]["batch_1"]) >= 0.005
    summary = timing.ratio_summary("predict", "teacher", "student", "batch_1")
    assert len(summary["per_round"]) == 3 and summary["min"] <= summary["ratio_of_medians"] <= summary["max"]


def test_the_time_budget_never_cuts_below_the_minimum_rounds() -> None:
    models = {"teacher": {"predict": _sleeper(0.002)}, "student": {"predict": _fast}}
    timing = measure_interleaved(models, _batch(20), batch_rows=10, rounds=10, min_rounds=3, max_seconds=1e-6)
    assert timing.rounds == 3


def test_models_must_offer_the_same_runtimes() -> None:
    with pytest.raises(ValueError, match="same runtimes"):
        measure_interleaved({"teacher": {"torch": _fast}, "student": {"onnxruntime": _fast}}, _batch(10), batch_rows=5)


def _known_timing(runtimes: list[str]) -> Interleaved:
    """Rounds with chosen times: teacher 10 ms a call, student 1, 2 and 4 ms, baseline 5 ms."""
    roles = ["teacher", "student", "baseline"]
    timing = Interleaved(runtimes, roles, {"batch_1": 1, "batch_n": 100}, order=[roles] * 3)
    per_call = {"teacher": [0.010] * 3, "student": [0.001, 0.002, 0.004], "baseline": [0.005] * 3}
    timing.seconds = {
        rt: {r: {"batch_1": list(v), "batch_n": [x * 10 for x in v]} for r, v in per_call.items()} for rt in runtimes
    }
    timing.cpu = {rt: {r: [x * 10 for x in v] for r, v in per_call.items()} for rt in runtimes}
    timing.single_calls = {rt: {r: list(v) for r, v in per_call.items()} for rt in runtimes}
    timing.calls = {rt: {r: {"batch_1": 3, "batch_n": 3} for r in roles} for rt in runtimes}
    return timing


def test_speedups_are_ratios_of_medians_with_the_per_round_extremes() -> None:
    timing = _known_timing(["predict"])
    effs = {role: timing.figures("predict", role) | {"n_parameters": 1.0, "size_bytes": 1.0} for role in timing.roles}
    m = efficiency_metrics(timing, effs)
    assert m["efficiency.speedup_rows_per_second"] == pytest.approx(10 / 2)  # median teacher / median student
    assert m["efficiency.speedup_rows_per_second.min"] == pytest.approx(2.5)
    assert m["efficiency.speedup_rows_per_second.max"] == pytest.approx(10)
    assert m["efficiency.speedup_latency"] == pytest.approx(5)
    assert m["efficiency.baseline.speedup_rows_per_second"] == pytest.approx(2)
    assert m["efficiency.student.rows_per_second"] == pytest.approx(100 / 0.02)
    assert m["efficiency.energy_ratio"] == pytest.approx(0.2)
    assert not [k for k in m if "predict" in k]  # an unnamed runtime adds no keys


def test_named_runtimes_each_get_their_figures_and_ratios_and_the_first_is_the_headline() -> None:
    timing = _known_timing(["onnxruntime", "torch"])
    timing.seconds["torch"]["student"]["batch_n"] = [0.05] * 3  # torch: the student gains only 2x
    effs = {role: timing.figures("onnxruntime", role) | {"n_parameters": 1.0, "size_bytes": 1.0} for role in timing.roles}
    m = efficiency_metrics(timing, effs)
    assert m["efficiency.speedup_rows_per_second"] == m["efficiency.onnxruntime.speedup_rows_per_second"] == pytest.approx(5)
    assert m["efficiency.torch.speedup_rows_per_second"] == pytest.approx(2)
    assert m["efficiency.student.torch.rows_per_second"] == pytest.approx(100 / 0.05)
    assert m["efficiency.baseline.torch.speedup_latency"] == pytest.approx(2)
    record = timing.as_dict()
    assert set(record["runtimes"]) == {"onnxruntime", "torch"}
    assert record["runtimes"]["torch"]["ratios"]["student"]["batch_n"]["per_round"] == pytest.approx([2, 2, 2])


# --------------------------------------------------------------------------- timed on one core

needs_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or not Path("/proc/self/task").is_dir(), reason="CPU affinity is Linux-only"
)


def _affinities() -> dict[int, set[int]]:
    """Every thread of this process and the CPUs it may run on."""
    out = {}
    for name in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):
            out[int(name)] = os.sched_getaffinity(int(name))
    return out


@contextlib.contextmanager
def _idle_thread() -> Iterator[int]:
    """A thread that only waits, so the pinning must reach threads other than the caller's; its id."""
    started, stop = threading.Event(), threading.Event()
    ids: list[int] = []

    def wait() -> None:
        ids.append(threading.get_native_id())
        started.set()
        stop.wait()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    started.wait()
    try:
        yield ids[0]
    finally:
        stop.set()
        thread.join()


def _assert_given_back(before: dict[int, set[int]], after: dict[int, set[int]], *ours: int) -> None:
    """Every thread alive at both reads has its own CPUs back. A thread an earlier test left
    behind (same worker process) may end between the reads; only the ones the test owns must
    survive them, so the check cannot pass on an empty intersection."""
    alive = before.keys() & after.keys()
    assert set(ours) <= alive
    assert {tid: after[tid] for tid in alive} == {tid: before[tid] for tid in alive}


def _observer(seen: dict[str, Any]) -> Any:
    """A predict that records, on its first call, what it runs on: every thread's CPUs, the
    threads torch and the contract would give it, the OpenMP/BLAS pools' sizes."""
    torch = pytest.importorskip("torch")

    def predict(X: pd.DataFrame) -> np.ndarray:
        if not seen:
            seen["affinities"] = _affinities()
            seen["torch"] = torch.get_num_threads()
            seen["inference_threads"] = inference_threads(8)
            seen["pools"] = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
        return _fast(X)

    return predict


@needs_affinity
def test_one_core_timing_pins_every_thread_caps_every_pool_and_gives_everything_back() -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    seen: dict[str, Any] = {}
    with _idle_thread() as other:
        before = _affinities()
        timing = measure_interleaved(
            {"teacher": {"predict": _observer(seen)}, "student": {"predict": _fast}}, _batch(50), batch_rows=20, rounds=3
        )
        after = _affinities()
    compute = timing.as_dict()["compute"]
    assert compute["pinned"] and compute["cores"] == 1 and compute["threads"] == 1
    (cpu,) = compute["cpus"]
    assert cpu in before[threading.get_native_id()] and compute["threads_pinned"] >= 2
    assert set(seen["affinities"]) >= {threading.get_native_id(), other}
    assert all(cpus == {cpu} for cpus in seen["affinities"].values())
    assert seen["torch"] == 1 and seen["inference_threads"] == 1 and set(seen["pools"].values()) == {1}
    assert compute["torch_threads"] == {"before": 2, "during": 1}
    _assert_given_back(before, after, threading.get_native_id(), other)  # each thread's own CPUs back
    assert torch.get_num_threads() == 2 and inference_threads(8) == 8


@needs_affinity
def test_a_predict_that_raises_still_gets_the_process_its_cores_and_threads_back() -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)

    def broken(X: pd.DataFrame) -> np.ndarray:
        raise RuntimeError("model exploded")

    with _idle_thread() as other:
        before = _affinities()
        with pytest.raises(RuntimeError, match="model exploded"):
            measure_interleaved({"teacher": {"predict": broken}, "student": {"predict": _fast}}, _batch(20), batch_rows=5)
        after = _affinities()
    _assert_given_back(before, after, threading.get_native_id(), other)
    assert torch.get_num_threads() == 2 and inference_threads(3) == 3


@needs_affinity
def test_all_cores_leaves_the_process_and_its_pools_as_they_are() -> None:
    seen: dict[str, Any] = {}
    timing = measure_interleaved(
        {"teacher": {"predict": _observer(seen)}, "student": {"predict": _fast}}, _batch(20), batch_rows=5, cores="all"
    )
    compute = timing.as_dict()["compute"]
    assert not compute["pinned"] and compute["threads"] is None and compute["asked"] == "all"
    assert seen["inference_threads"] == 8 and seen["affinities"][threading.get_native_id()] == os.sched_getaffinity(0)


def test_the_timing_record_says_what_the_models_ran_on() -> None:
    """efficiency.json's ``compute``: cores, pinned CPU, threads, how the CPU was chosen; and each
    model's CPU seconds per wall second (about 1 on one core)."""
    models = {role: {"predict": _fast} for role in ("teacher", "student")}
    record = measure_interleaved(models, _batch(50), batch_rows=20, rounds=3).as_dict()
    compute = record["compute"]
    assert compute["asked"] == compute["cores"] == compute["threads"] == 1
    assert compute["summary"] and compute["how"]
    if compute["pinned"]:
        assert len(compute["cpus"]) == 1 and "least busy" in compute["how"] and str(compute["cpus"][0]) in compute["busy"]
    else:  # no CPU affinity here: the record says the pools were capped only
        assert "not available" in compute["how"]
    assert set(record["runtimes"]["predict"]["cpu_per_wall"]) == {"teacher", "student"}
    if Path("/proc/thread-self/schedstat").exists():  # the time on a core of its own, the wall time beside it
        assert record["measure"].startswith("seconds per call on a core of its own")
        entry = record["runtimes"]["predict"]
        walls, owns = (entry[k]["teacher"]["batch_n"] for k in ("wall_seconds_per_call", "seconds_per_call"))
        assert all(0 < own <= wall for own, wall in zip(owns, walls, strict=True))


@pytest.mark.skipif(not Path("/proc/thread-self/schedstat").exists(), reason="the kernel's runqueue delay is Linux-only")
def test_the_wait_clock_reads_the_calling_threads_runqueue_delay() -> None:
    with WaitClock() as waits:
        first = waits()
        assert waits.available and first >= 0 and waits() >= first  # seconds waited so far, never less
        errors: list[BaseException] = []
        thread = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, waits).value))
        thread.start()
        thread.join()
        assert errors and "thread that opened it" in str(errors[0])
    assert not waits.available and waits() == 0.0
    assert not WaitClock(enabled=False).available


@pytest.mark.parametrize("value", ["0", "two", "true", "1.5", "-1"])
def test_efficiency_cores_is_a_whole_number_of_cores_or_all(value: str) -> None:
    default = Path(__import__("stillroom_fraud").__file__).with_name("default.yaml")
    with pytest.raises(ConfigError, match="evaluation.efficiency_cores"):
        cfg.resolve(FraudConfig, default, None, [f"evaluation.efficiency_cores={value}"])
    assert cfg.resolve(FraudConfig, default, None, []).evaluation.efficiency_cores == 1
    assert cfg.resolve(FraudConfig, default, None, ["evaluation.efficiency_cores=all"]).evaluation.efficiency_cores == "all"
    assert cfg.resolve(FraudConfig, default, None, ["evaluation.efficiency_cores=2"]).evaluation.efficiency_cores == 2
