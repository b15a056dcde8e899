"""What a benchmark ran on, for the header of its results: CPU model, cores, RAM, versions.

A figure without its machine cannot be compared with the next run's; every bench script puts
this line at the top of its report.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from pathlib import Path


def _proc_field(path: str, key: str) -> str | None:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:  # not Linux: the header says less, the benchmark still runs
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), None)


def version(dist: str) -> str:
    """The installed version of a distribution, or ``not installed``."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def describe(packages: tuple[str, ...]) -> str:
    """``CPU model, N cores, M GiB RAM; Python x.y; package versions``."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()
    mem_kib = _proc_field("/proc/meminfo", "MemTotal")
    mem = f"{int(mem_kib.split()[0]) // 1024**2} GiB RAM" if mem_kib else "RAM unknown"
    versions = ", ".join(f"{d} {version(d)}" for d in packages)
    return f"{cpu}, {os.cpu_count()} cores, {mem}; Python {platform.python_version()}; {versions}"


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_settings() -> str:
    """The thread-count variables this bench ran under (``OMP_NUM_THREADS=1``), or ``""``: a
    figure measured on one thread is not comparable with one measured on every core."""
    return ", ".join(f"{k}={os.environ[k]}" for k in THREAD_VARIABLES if k in os.environ)
