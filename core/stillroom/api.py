"""stillroom from Python: :func:`distill` and :func:`score`, what the CLI runs.

Each call uses the process-wide plugin manager (:func:`get_plugin_manager`: the core's own
plugin and every installed vertical) and sets MLflow's client settings only for its own
duration (:func:`stillroom.tracking.client_settings`).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import tracking
from .audit.record import record
from .audit.summary import print_summary
from .builtin import CorePlugin
from .cache import use_cache_dir
from .contract.context import ScoringContext
from .contract.names import SCORING_EXPERIMENT
from .contract.specs import InputFormat
from .distillation.pipeline import distill as run_steps
from .distillation.pipeline import load_config
from .errors import DataError
from .metrics import psi_from_counts
from .plugins import StillroomPluginManager
from .progress import console, timed
from .scoring import spark
from .scoring.batch import input_sha256, score_file
from .scoring.formats import ColumnSpec, Input, materialize

ENGINES = ("local", "spark")


def plugin_manager() -> StillroomPluginManager:
    """A new plugin manager with the core's plugin and every installed vertical loaded."""
    pm = StillroomPluginManager()
    pm.load_core(CorePlugin(pm))
    pm.load_entry_points()
    return pm


@lru_cache(maxsize=1)
def get_plugin_manager() -> StillroomPluginManager:
    """The process-wide plugin manager (:func:`plugin_manager`, made once)."""
    return plugin_manager()


def distill(task: str, config: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run one distillation of ``task`` and return its summary (run id, gate, registered version,
    metrics, timings). ``config`` is a path to a YAML file, a dict, or ``None`` for the
    vertical's default; ``overrides`` are ``key=value`` strings like ``--set``."""
    with tracking.client_settings():
        return run_distillation(task, config, overrides or [])


def run_distillation(task_name: str, user_config: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Steps 1-8; returns the run summary (run id, gate, registered version, metrics, timings)."""
    pm = get_plugin_manager()
    task = pm.task(task_name)
    cfg = load_config(task, user_config, overrides)
    with timed() as timings:
        tracking_uri = tracking.connect(cfg.run.tracking_uri)
        tracking.check_write_access(cfg.run.experiment, cfg.run.registered_model if cfg.run.register_student else None)
        with tempfile.TemporaryDirectory(prefix="stillroom-run-") as tmp, use_cache_dir(cfg.run.cache_dir):
            distillation = run_steps(pm, task, cfg, Path(tmp))
            summary = record(pm, distillation, timings, tracking_uri)
    print_summary(summary)
    return summary


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
    raw: bool = False,
) -> dict[str, Any]:
    """Score ``input_path`` into ``output_path`` with the pinned model version; return a summary.

    The alias is resolved to one fixed version before anything is read; the input is checked
    against the model signature before any row is scored; rows stream through in chunks; the
    output appears atomically; and the job is logged as a scoring run (version, input digest,
    rows, throughput, score histogram, PSI against the training scores, and the engine that
    computed the scores). ``local`` streams the file through this process, with the compiled
    student when one was logged and runs here; ``spark`` runs the same version as a Spark UDF.
    With ``raw``, the input holds raw records (raw transactions with their history) and is read
    with the input format the model's run recorded, which computes the model's inputs exactly as
    training did.
    """
    with tracking.client_settings():
        return _score(
            model_uri,
            Path(input_path),
            Path(output_path),
            chunk_rows=chunk_rows,
            passthrough=passthrough,
            progress=progress,
            tracking_uri=tracking_uri,
            log_run=log_run,
            engine=engine,
            master=master,
            compiled=compiled,
            raw=raw,
        )


def _score(
    model_uri: str,
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int,
    passthrough: tuple[str, ...],
    progress: bool,
    tracking_uri: str | None,
    log_run: bool,
    engine: str,
    master: str | None,
    compiled: bool,
    raw: bool,
) -> dict[str, Any]:
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r} (use one of {', '.join(ENGINES)})")
    if master and engine != "spark":
        raise DataError("--master is for the spark engine; add --engine spark")
    tracking.connect(tracking_uri)
    if log_run:
        tracking.check_write_access(SCORING_EXPERIMENT, None)
    model = tracking.load_scoring_model(model_uri, compiled=compiled and engine == "local")
    console.log(f"{model_uri} -> {model.name} version {model.version}")
    pm = get_plugin_manager()
    context = ScoringContext(model_uri, model.version, Path(input_path), Path(output_path))
    pm.before_scoring(context)
    expected = [ColumnSpec(c.name, c.dtype, c.shape) for c in model.columns]
    source = Input(Path(input_path), expected, pm.input_formats(), model.config, _raw_format(pm, model) if raw else None)
    if source.named is not None:
        console.log(f"input: raw records read with {source.named.name}, as the model's run recorded")
        source = replace(source, config={**model.config, **model.input_settings})
    if engine == "spark":
        used, note = f"spark:{master or spark.DEFAULT_MASTER}", "mlflow.pyfunc.spark_udf of the pinned version"
        console.log(f"engine: {used}")
        result = _score_spark(model, source, Path(output_path), passthrough, chunk_rows, master)
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
            formats=source.formats,
            model_config=source.config,
            named_format=source.named,
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
        summary["psi_vs_training"] = psi_from_counts(model.reference["counts"], result.score_counts)
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


def _raw_format(pm: StillroomPluginManager, model: tracking.ScoringModel) -> InputFormat:
    """The input format the model's run recorded for raw records, from the installed verticals."""
    if not model.input_format:
        raise DataError(
            f"{model.name} v{model.version} was not trained from raw records (its run recorded no input format): "
            "score a table of its input columns without --raw"
        )
    named = [fmt for fmt in pm.input_formats() if fmt.name == model.input_format]
    if not named:
        raise DataError(
            f"{model.name} v{model.version} reads raw records with {model.input_format!r}: install the vertical that provides it"
        )
    return named[0]


def _score_spark(
    model: tracking.ScoringModel, source: Input, output: Path, passthrough: tuple[str, ...], chunk_rows: int, master: str | None
) -> Any:
    """Spark scores Parquet tables: a vertical's input (raw records ...) is first turned into the
    model's inputs by its reader, here, into a hidden Parquet file beside the output; the scoring
    run still records the digest of the input the user gave."""
    factory = tracking.spark_udf_factory(model.uri)
    if source.reader() is None:
        return spark.score_parquet(factory, source.path, output, source.expected, passthrough=passthrough, master=master)
    if any(spec.is_tensor for spec in source.expected):
        raise DataError(
            "the spark engine scores tables; score this input (arrays per row) with the local engine (--engine local)"
        )
    with tempfile.TemporaryDirectory(
        prefix=f".{output.name}.inputs-", dir=output.parent if output.parent.is_dir() else None
    ) as tmp:
        table = Path(tmp) / "inputs.parquet"
        carried = materialize(source, passthrough, chunk_rows, table)
        result = spark.score_parquet(factory, table, output, source.expected, passthrough=carried, master=master)
    result.input_digest = input_sha256(source.path)
    return result
