"""The compliance manifest: every artifact of a run with its sha256.

A reviewer (or a script) can re-hash what MLflow stores and prove nothing was swapped
after the run: the model files, the model card, the plots, the reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._runtime import sha256_file


def build_manifest(artifact_dir: Path, model_files: dict[str, str], context: dict[str, Any]) -> dict[str, Any]:
    """Manifest of the run artifacts under ``artifact_dir`` plus the logged model's files."""
    artifacts = {
        str(p.relative_to(artifact_dir)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(artifact_dir.rglob("*"))
        if p.is_file()
    }
    return {
        "schema": "stillroom.manifest/1",
        **context,
        "artifacts": artifacts,
        "model_files": {name: {"sha256": digest} for name, digest in model_files.items()},
    }
