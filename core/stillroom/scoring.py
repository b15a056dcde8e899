"""Batch scoring with a registered student: ``stillroom score MODEL_URI INPUT OUTPUT``.

The alias is resolved to one fixed version before anything is read; the input is checked
against the model signature before any row is scored; rows stream through in chunks; the
output appears atomically; and the job is logged as a scoring run (version, input digest,
rows, throughput, score histogram, PSI against the training scores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from . import metrics, tracking
from .batch import ColumnSpec, score_file
from .context import ScoringContext
from .plugins import get_plugin_manager

console = Console(stderr=True, log_path=False)


def score(
    model_uri: str,
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int = 100_000,
    passthrough: tuple[str, ...] = (),
    progress: bool = True,
    tracking_uri: str | None = None,
    log_run: bool = True,
) -> dict[str, Any]:
    """Score ``input_path`` into ``output_path`` with the pinned model version; return a summary."""
    tracking.connect(tracking_uri)
    model = tracking.load_scoring_model(model_uri)
    console.log(f"{model_uri} -> {model.name} version {model.version}")
    pm = get_plugin_manager()
    context = ScoringContext(model_uri, model.version, Path(input_path), Path(output_path))
    pm.before_scoring(context)
    expected = [ColumnSpec(name, dtype) for name, dtype in model.columns]
    result = score_file(
        model.predict, input_path, output_path, expected, chunk_rows=chunk_rows, passthrough=passthrough, progress=progress
    )
    summary: dict[str, Any] = {
        "model": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
        "input": str(input_path),
        "output": str(output_path),
        "input_digest": result.input_digest,
        "rows": result.rows,
        "seconds": result.seconds,
        "rows_per_second": result.rows_per_second,
        "score_mean": result.score_mean,
        "unscored_rows": result.unscored_rows,
    }
    if model.reference is not None:
        summary["psi_vs_training"] = metrics.psi_from_counts(model.reference["counts"], result.score_counts)
    if log_run:
        summary["run_id"] = tracking.log_scoring_run(
            params={k: summary[k] for k in ("model", "model_version", "model_uri", "input", "output", "input_digest")},
            metrics={
                k: float(summary[k])
                for k in ("rows", "seconds", "rows_per_second", "score_mean", "unscored_rows", "psi_vs_training")
                if k in summary
            },
            artifacts={
                "score_histogram.json": {
                    "edges": list(map(float, result.bin_edges)),
                    "counts": list(map(int, result.score_counts)),
                }
            },
            tags={"stillroom.role": "scoring", "stillroom.model_version": f"{model.name}/{model.version}"},
        )
    pm.after_scoring(context, summary)
    return summary
