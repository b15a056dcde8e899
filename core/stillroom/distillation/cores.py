"""The compute a timing runs on: the whole process pinned to chosen CPUs, its thread pools capped.

Why: teacher and student rarely parallelise alike. A forest with ``n_jobs=-1``, OpenMP
boosting or an ONNX Runtime session spreads over every core, while a student's time can be
mostly single-threaded Python; timed on a 2-core machine, the first slows twice as much as
the second when another job takes a core, so their ratio moves with the load (fraud 13.6x ->
33.2x, bench/results/efficiency-all-cores.md). On one core each, both see the same compute, and the
ratio compares what each model costs per core. That is also the capacity figure that
matters: batch jobs scale by partitions and workers (Spark, the scoring pool), so a model's
throughput per core times the cores given is its capacity.

How (``evaluation.efficiency_cores``, default 1): every thread of the process
(``/proc/self/task``) gets a CPU affinity of the chosen CPUs (the least busy the process may
use, sampled from ``/proc/stat`` just before, and recorded), so even a pool created earlier
with more threads runs on them; OpenMP and BLAS pools are capped by threadpoolctl, torch by
``torch.set_num_threads`` (only when a model has imported torch), and models that choose
their own threads ask :func:`stillroom.contract.inference_threads`. scikit-learn's
``n_jobs=-1`` resolves to the affinity's CPU count by itself. Everything is given back
afterwards, also on an exception or an interrupt. Where CPU affinity is not available
(not Linux), only the thread pools are capped, and the record says so. ``all`` keeps each
model's own threads on every CPU (the behaviour before this module).

Two timings in one process (a search's parallel trials) take turns: the pinning is
process-wide (a trial training meanwhile shares the timing's core: its time then shows in the
wall seconds, and in the waits :class:`WaitClock` subtracts).

:class:`WaitClock` reads how long the timing thread waited for its CPU, so a call's time on a
shared core can be told from the time it would take on a core of its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from threadpoolctl import threadpool_info, threadpool_limits

from .._runtime import usable_cores
from ..contract.compute import thread_budget
from ..interrupts import deferred

__all__ = ["Compute", "Cores", "WaitClock", "timing_compute"]

Cores = int | Literal["all"]

_TASKS = Path("/proc/self/task")
_STAT = Path("/proc/stat")
_SCHEDSTAT = "/proc/thread-self/schedstat"  # on-CPU ns, runqueue-wait ns, time slices of the calling thread
_SAMPLE_SECONDS = 0.25  # long enough for /proc/stat's clock ticks (10 ms) to tell a busy CPU from an idle one
_LOCK = threading.RLock()  # one timing at a time: the affinity is the whole process's


@dataclass
class Compute:
    """What a timing ran on, as logged in ``efficiency.json`` under ``compute``."""

    asked: Cores
    cores: int
    cpus: list[int]
    pinned: bool
    threads: int | None  # the cap of every thread pool; None: each model's own
    how: str
    busy: dict[str, float] = field(default_factory=dict)  # each usable CPU's busy share just before the choice
    threads_pinned: int = 0
    thread_pools: list[dict[str, Any]] = field(default_factory=list)  # threadpoolctl's pools, before the cap
    torch_threads: dict[str, int] | None = None

    def summary(self) -> str:
        """One line for the console and the card: where the models ran and with how many threads."""
        where = ("CPU " if len(self.cpus) == 1 else "CPUs ") + ", ".join(map(str, self.cpus)) if self.pinned else "no pinning"
        threads = "each model's own threads" if self.threads is None else f"{self.threads} thread(s) per pool"
        return f"{where}, {threads} ({self.how})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"summary": self.summary()}


@contextmanager
def timing_compute(cores: Cores = 1) -> Iterator[Compute]:
    """Run the block on ``cores`` CPUs with every thread pool capped to ``cores`` threads
    (``all``: untouched); yields the record of what was used."""
    if cores == "all":
        allowed = _allowed_cpus()
        yield Compute(
            "all",
            usable_cores(),
            sorted(allowed or []),
            False,
            None,
            "each model's own threads on every CPU the process may use (evaluation.efficiency_cores: all)",
        )
        return
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"timing_compute: cores must be a whole number >= 1 or 'all', got {cores!r}")
    with _LOCK, ExitStack() as stack:
        compute = _plan(cores)
        compute.thread_pools = [{k: pool.get(k) for k in ("internal_api", "prefix", "num_threads")} for pool in threadpool_info()]
        if compute.pinned:
            compute.threads_pinned = stack.enter_context(_pinned(set(compute.cpus)))
        if "torch" in sys.modules:  # before threadpoolctl: torch's own count is what is given back
            from ..torchkd.threads import torch_threads

            compute.torch_threads = stack.enter_context(torch_threads(compute.cores))
        stack.enter_context(threadpool_limits(limits=compute.cores))
        stack.enter_context(thread_budget(compute.cores))
        yield compute


def _plan(cores: int) -> Compute:
    """Which CPUs: the ``cores`` least busy the process may use (fewer if it may use fewer)."""
    allowed = _allowed_cpus()
    if allowed is None:
        return Compute(
            cores,
            cores,
            [],
            False,
            cores,
            f"thread pools capped to {cores} only: CPU affinity is not available on this platform ({sys.platform}), "
            "so a model's own process-wide pools (n_jobs=-1) are not confined",
        )
    busy = _busy_shares(allowed)
    used = min(cores, len(allowed))
    chosen = sorted(sorted(allowed, key=lambda cpu: (busy.get(cpu, 0.0), cpu))[:used])
    how = (
        f"the {used} least busy of the CPUs this process may use {sorted(allowed)} over {_SAMPLE_SECONDS:g} s"
        if busy
        else f"the first {used} of the CPUs this process may use {sorted(allowed)} (/proc/stat unreadable)"
    )
    if used < cores:
        how += f"; {cores} cores asked, the process may use only {len(allowed)}"
    return Compute(cores, used, chosen, True, used, how, {str(c): round(b, 3) for c, b in sorted(busy.items())})


def _allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on, or None where affinity cannot be set (or every thread
    cannot be listed: a pool thread left unpinned would escape the timing's core)."""
    if not hasattr(os, "sched_setaffinity") or not _TASKS.is_dir():
        return None
    return set(os.sched_getaffinity(0))


def _busy_shares(cpus: set[int]) -> dict[int, float]:
    """Each CPU's busy share of a short sample (1 - idle and iowait ticks / all ticks)."""
    first = _cpu_ticks()
    if not first:
        return {}
    time.sleep(_SAMPLE_SECONDS)
    second = _cpu_ticks()
    out = {}
    for cpu in cpus:
        if cpu in first and cpu in second:
            idle, total = (b - a for a, b in zip(first[cpu], second[cpu], strict=True))
            out[cpu] = 1.0 - idle / total if total > 0 else 0.0
    return out


def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (idle + iowait ticks, all ticks) since boot, from ``/proc/stat``."""
    try:
        lines = _STAT.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            out[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return out


@contextmanager
def _pinned(cpus: set[int]) -> Iterator[int]:
    """Every thread of the process on ``cpus`` for the block (yields how many were pinned);
    each thread's own affinity given back after, the calling thread's to threads born meanwhile."""
    original = os.sched_getaffinity(0)
    saved: dict[int, set[int]] = {}
    try:
        _pin_all(cpus, saved)
        yield len(saved)
    finally:
        with deferred():  # an interrupt must not leave the process on one core
            _restore(saved, original)


def _pin_all(cpus: set[int], saved: dict[int, set[int]]) -> None:
    """Pin every thread, listing them again until none is new (a pool may start one meanwhile;
    threads started by a pinned thread inherit its affinity)."""
    for _ in range(5):
        new = [tid for tid in _thread_ids() if tid not in saved]
        if not new:
            return
        for tid in new:
            try:
                before = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            saved[tid] = before


def _restore(saved: dict[int, set[int]], original: set[int]) -> None:
    for tid in _thread_ids():
        try:
            os.sched_setaffinity(tid, saved.get(tid, original))
        except ProcessLookupError:
            continue


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(_TASKS)]
    except OSError:
        return [threading.get_native_id()]


class WaitClock:
    """Seconds the calling thread has spent ready to run but waiting for its CPU, so far.

    Why: a timing pinned to one core still shares it with other jobs; the kernel counts how
    long each thread waited in its CPU's run queue (``/proc/thread-self/schedstat``, second
    field), and a call's wall time minus that wait is its time on a core of its own, with
    its own sleeps and I/O kept. Opened in the thread that times (the file names the calling
    thread); ``available`` is False where the kernel does not say (not Linux, no schedstat),
    and then the call reads 0.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._fd: int | None = None
        if enabled:
            with contextlib.suppress(OSError):
                self._fd = os.open(_SCHEDSTAT, os.O_RDONLY)
        self._thread = threading.get_ident()
        if self._fd is not None and self._read() is None:
            self.close()

    @property
    def available(self) -> bool:
        return self._fd is not None

    def __call__(self) -> float:
        if self._fd is None:
            return 0.0
        if threading.get_ident() != self._thread:
            raise RuntimeError("WaitClock: read it in the thread that opened it (the file names that thread)")
        return self._read() or 0.0

    def _read(self) -> float | None:
        assert self._fd is not None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WaitClock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
