"""What a reviewer needs to reproduce a run: versions, machine, plugins, git commit."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from .._runtime import git_commit, package_version
from ..plugins import StillroomPluginManager

PACKAGES = ("stillroom", "mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "torch", "rdkit", "pluggy", "pydantic")


def environment(pm: StillroomPluginManager) -> dict[str, Any]:
    """Python, platform, package and plugin versions, and the git commit of the working directory."""
    versions = {dist: package_version(dist, missing="") for dist in PACKAGES}
    packages = {dist: version for dist, version in versions.items() if version}
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


def plugin_inventory(pm: StillroomPluginManager) -> str:
    """``dist==version`` of every plugin that loaded, for a run tag."""
    return ", ".join(f"{p.distribution}=={p.version}" for p in pm.inventory if not p.error)
