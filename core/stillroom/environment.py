"""What a reviewer needs to reproduce a run: versions, machine, plugins, git commit."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import sys
from typing import Any

from .plugins import StillroomPluginManager

PACKAGES = ("stillroom", "mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "torch", "rdkit", "pluggy", "pydantic")


def environment(pm: StillroomPluginManager) -> dict[str, Any]:
    """Python, platform, package and plugin versions, and the git commit of the working directory."""
    packages = {}
    for dist in PACKAGES:
        try:
            packages[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": packages,
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version, "error": p.error} for p in pm.inventory
        ],
        "git_commit": git_commit(),
    }


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's share), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def git_commit() -> str | None:
    """The commit checked out where the run was started, if that is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def plugin_inventory(pm: StillroomPluginManager) -> str:
    """``dist==version`` of every plugin that loaded, for a run tag."""
    return ", ".join(f"{p.distribution}=={p.version}" for p in pm.inventory if not p.error)
