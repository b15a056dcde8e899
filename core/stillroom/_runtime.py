"""Facts about the process and its files that many layers need: usable cores, the git commit,
installed package versions, and file hashes. One copy of each, importing nothing of ours.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

_HASH_BLOCK_BYTES = 1 << 20


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


def package_version(distribution: str, missing: str = "unknown") -> str:
    """The installed version of a distribution, or ``missing`` when it is not installed."""
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return missing


def pinned_requirements(distributions: Iterable[str]) -> list[str]:
    """``name==version`` for each installed distribution, in order, once each; others are left out.

    Why pinned: a logged model's requirements say what produced it, so its scoring environment
    can be rebuilt exactly. A local version label (torch's ``+cpu``) is cut: pip cannot resolve
    it from an index, and the public release is the same code."""
    out: list[str] = []
    for name in dict.fromkeys(distributions):
        version = package_version(name, missing="")
        if version:
            out.append(f"{name}=={version.split('+')[0]}")
    return out


def sha256_file(path: str | os.PathLike[str], stop: threading.Event | None = None) -> str:
    """Hex sha256 of a file's bytes, streamed in blocks (bounded memory for any size).

    ``stop`` lets a caller abandon hashing a huge file (a failed scoring job): then ``""``.
    """
    digest = hashlib.sha256()
    with open(Path(path), "rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            if stop is not None and stop.is_set():
                return ""
            digest.update(block)
    return digest.hexdigest()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
