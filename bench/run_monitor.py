"""What one benchmarked run cost: CPU seconds per step, and the memory of its whole process tree.

Two measurements the core's step timings (wall seconds) do not give:

* **CPU seconds per step**, taken inside the run's process from the ``stillroom`` logger's step
  announcements (start and end, :mod:`stillroom.progress`): at each boundary the CPU time of the
  process and of its reaped children (the worker pools are joined inside their step). On a shared
  machine wall time measures the neighbours; CPU seconds measure the run.
* **peak memory of the process tree**, sampled from outside (the parent) with psutil every
  ``interval`` seconds: the largest sum of resident sets over the run's process and all its
  descendants, and the largest resident set of the run's process alone. ``ru_maxrss`` (the
  kernel's own peak, exact but per process) is reported beside it by the caller; a sampled peak
  can miss a spike shorter than the interval.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import threading
import time
from typing import Any

import psutil


def cpu_now() -> float:
    """CPU seconds (user + system) of this process and of its children already waited for."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def step_key(title: str) -> str:
    """The core's key for a step title (``progress.step``: the words before the colon)."""
    return re.sub(r"\W+", "_", title.split(":", 1)[0].strip().lower())


class StepCPU(logging.Handler):
    """CPU seconds per kind of step, added up like the core adds up wall seconds; and every step
    by its full title (``teacher: building ...`` apart from ``teacher: scoring ...``)."""

    def __init__(self, echo: Any = None) -> None:
        super().__init__(logging.DEBUG)
        self.echo = echo  # a text stream each finished step is also written to (a run cut short keeps them)
        self.open: dict[str, tuple[float, float]] = {}
        self.cpu: dict[str, float] = {}
        self.steps: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        title, phase = getattr(record, "stillroom_step", None), getattr(record, "stillroom_phase", None)
        if title is None or phase is None:
            return
        if phase == "start":
            self.open[title] = (time.perf_counter(), cpu_now())
        elif title in self.open:
            wall0, cpu0 = self.open.pop(title)
            cpu = cpu_now() - cpu0
            key = step_key(title)
            self.cpu[key] = self.cpu.get(key, 0.0) + cpu
            self.steps.append({"title": title, "wall": round(time.perf_counter() - wall0, 1), "cpu": round(cpu, 1)})
            if self.echo is not None:
                print(f"[bench] step done: {json.dumps(self.steps[-1])} cpu_total {cpu_now():.1f}", file=self.echo, flush=True)


class TreeSampler:
    """Samples a process tree's resident memory and the load average until stopped."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = 0
        self.peak_root = 0
        self.peak_processes = 0
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            self._sample()
            if ticks % int(10 / self.interval) == 0:
                self.loads.append(os.getloadavg()[0])
            ticks += 1
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in processes:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            if p.pid == self.root.pid:
                self.peak_root = max(self.peak_root, rss)
        self.peak_tree = max(self.peak_tree, total)
        self.peak_processes = max(self.peak_processes, len(processes))

    def facts(self) -> dict[str, Any]:
        mb = 2**20
        return {
            "peak_tree_rss_mb": round(self.peak_tree / mb),
            "peak_run_rss_sampled_mb": round(self.peak_root / mb),
            "peak_processes": self.peak_processes,
            "load_average_mean": round(sum(self.loads) / len(self.loads), 1) if self.loads else None,
            "load_average_max": round(max(self.loads), 1) if self.loads else None,
            "sample_interval_s": self.interval,
        }
