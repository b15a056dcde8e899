"""Batch scoring with a registered student: ``stillroom score MODEL_URI INPUT OUTPUT``.

The alias is resolved to one fixed version before anything is read; the input is checked
against the model signature before any row is scored; rows stream through in chunks; the
output appears atomically; and the job is logged as a scoring run (version, input digest,
rows, throughput, score histogram, PSI against the training scores, and the engine that
computed the scores).

Engines: ``local`` streams the file through this process, with the compiled student
(:mod:`stillroom.compiled`) when one was logged and runs here, else the model's own flavor;
``spark`` runs the same model version as a Spark UDF on a local or cluster master
(:mod:`stillroom.spark`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from . import metrics, spark, tracking
from .batch import ColumnSpec, score_file
from .context import ScoringContext
from .errors import DataError
from .plugins import get_plugin_manager

console = Console(stderr=True, log_path=False)


ENGINES = ("local", "spark")


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
    engine: str = "local",
    master: str | None = None,
    compiled: bool = True,
) -> dict[str, Any]:
    """Score ``input_path`` into ``output_path`` with the pinned model version; return a summary."""
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r} (use one of {', '.join(ENGINES)})")
    if master and engine != "spark":
        raise DataError("--master is for the spark engine; add --engine spark")
    tracking.connect(tracking_uri)
    if log_run:
        tracking.check_write_access(tracking.SCORING_EXPERIMENT, None)
    model = tracking.load_scoring_model(model_uri, compiled=compiled and engine == "local")
    console.log(f"{model_uri} -> {model.name} version {model.version}")
    pm = get_plugin_manager()
    context = ScoringContext(model_uri, model.version, Path(input_path), Path(output_path))
    pm.before_scoring(context)
    expected = [ColumnSpec(name, dtype, shape) for name, dtype, shape in model.columns]
    read = pm.input_reader(Path(input_path), model.config)  # a vertical's input (images ...), else None
    if engine == "spark" and (read is not None or any(spec.is_tensor for spec in expected)):
        raise DataError("the spark engine scores CSV/Parquet tables; score this input with the local engine")
    if engine == "spark":
        used, note = f"spark:{master or spark.DEFAULT_MASTER}", "mlflow.pyfunc.spark_udf of the pinned version"
        console.log(f"engine: {used}")
        result = spark.score_parquet(
            tracking.spark_udf_factory(model.uri), input_path, output_path, expected, passthrough=passthrough, master=master
        )
    else:
        used, note = model.engine, model.engine_note
        console.log(f"engine: {used} ({note})")
        result = score_file(
            model.predict,
            input_path,
            output_path,
            expected,
            chunk_rows=chunk_rows,
            passthrough=passthrough,
            progress=progress,
            read=read,
        )
    summary: dict[str, Any] = {
        "model": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
        "input": str(input_path),
        "output": str(output_path),
        "input_digest": result.input_digest,
        "engine": used,
        "engine_note": note,
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
            params={
                k: summary[k]
                for k in ("model", "model_version", "model_uri", "input", "output", "input_digest", "engine", "engine_note")
            },
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
            tags={
                "stillroom.role": "scoring",
                "stillroom.model_version": f"{model.name}/{model.version}",
                "stillroom.engine": used,
            },
        )
    pm.after_scoring(context, summary)
    return summary
