"""stillroom from Python: :func:`distill`, :func:`score` and :func:`verify`, what the CLI runs.

A library call is quiet unless asked (``verbose=True``, or the caller's own ``logging``
configuration of the ``stillroom`` logger), returns a typed result, and leaves no lasting change
to the caller's MLflow state or environment (:func:`stillroom.tracking.client_settings`: tracking
URI, active experiment and run, environment variables are given back as they were). Each call
uses the process-wide plugin manager (:func:`get_plugin_manager`: the core's own plugin and every
installed vertical).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import tracking
from ._runtime import usable_cores
from .audit.record import record
from .builtin import CorePlugin
from .cache import use_cache_dir
from .contract.context import ScoringContext
from .contract.names import SCORING_EXPERIMENT
from .contract.specs import InputFormat
from .distillation.pipeline import distill as run_steps
from .distillation.pipeline import load_config
from .errors import DataError, missing_dependency
from .interrupts import deferred
from .metrics import psi_from_counts
from .plugins import StillroomPluginManager
from .progress import logger, show_on_stderr, step, timed
from .scoring import spark
from .scoring.batch import input_sha256, score_file
from .scoring.formats import ColumnSpec, Input, materialize
from .scoring.output import OutputSlot
from .scratch import scratch_dir, sweep_orphans

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


class _Result:
    """Read access by key, as when these results were plain dicts (``result["run_id"]``)."""

    def __getitem__(self, key: str) -> Any:
        if key in {f.name for f in fields(self)}:  # type: ignore[arg-type]
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in {f.name for f in fields(self)} and getattr(self, str(key)) is not None  # type: ignore[arg-type]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``--json``)."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class DistillResult(_Result):
    """One distillation: its MLflow run, the gate, the compliance check, the registered version."""

    run_id: str
    task: str
    task_type: str
    gate: str
    gate_reasons: list[str]
    compliance: dict[str, Any]
    registered_model: str | None
    version: str | None
    model_uri: str
    metrics: dict[str, float]
    intervals: dict[str, Any]
    reference: str = "labels"
    not_estimable: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)
    tracking_uri: str = ""
    data_quality: dict[str, Any] = field(default_factory=dict, repr=False)
    gate_verdict: str = ""  # the status with what it rests on ("failed, undecided: ..." when no rule was decided)
    gate_undecided: bool = False  # failed only on inconclusive or not-estimable rules: the evidence fell short

    @property
    def passed(self) -> bool:
        return self.gate == "passed"

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> DistillResult:
        return cls(**{f.name: summary[f.name] for f in fields(cls) if f.name in summary})


@dataclass(frozen=True)
class ScoreResult(_Result):
    """One batch scoring job: the pinned version, what was read and written (with digests), speed."""

    model: str
    model_version: str
    model_uri: str
    input: str
    output: str
    input_digest: str
    output_digest: str
    output_rows: int
    engine: str
    engine_note: str
    integrity: str
    rows: int
    seconds: float
    rows_per_second: float
    score_mean: float
    unscored_rows: int
    psi_vs_training: float | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class SearchResult(_Result):
    """One search: its parent run and study, the trials, the front, the chosen trial and why
    (``choice``: the rule, and each front trial compared with the default student on
    validation), and the chosen student's distillation (judged on test, gated, registered) as a
    :class:`DistillResult`."""

    run_id: str
    study: str
    storage: str
    resumed: bool
    chosen_trial: int
    chosen_params: dict[str, Any]
    trials: dict[str, int]
    constraints_missed: dict[str, dict[str, int]]  # per constraint: trials that missed it (inconclusive, not estimable)
    front: list[dict[str, Any]]
    choice: dict[str, Any]
    distillation: DistillResult

    @property
    def passed(self) -> bool:
        return self.distillation.passed

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> SearchResult:
        return cls(**(summary | {"distillation": DistillResult.from_summary(summary["distillation"])}))


@contextmanager
def library_call(verbose: bool = False) -> Iterator[None]:
    """A call from Python: MLflow's client settings for its duration only, the caller's MLflow
    state given back, and progress on stderr only with ``verbose``."""
    handler = show_on_stderr() if verbose and not logger.handlers else None
    try:
        with tracking.client_settings():
            yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)


def distill(task: str, config: Any = None, overrides: list[str] | None = None, *, verbose: bool = False) -> DistillResult:
    """Run one distillation of ``task``; return its result (run id, gate, registered version,
    compliance, metrics). ``config`` is a path to a YAML file, a dict, or ``None`` for the
    vertical's default; ``overrides`` are ``key=value`` strings like ``--set``. Quiet unless
    ``verbose`` (or the ``stillroom`` logger is configured by the caller)."""
    with library_call(verbose):
        return DistillResult.from_summary(run_distillation(task, config, overrides or []))


def recover_after_killed_jobs(experiments: list[str]) -> None:
    """What killed jobs left, before this one starts: their MLflow runs marked as such
    (:func:`tracking.recover`) and their temporary folders removed (:func:`scratch.sweep_orphans`)."""
    tracking.recover(experiments)
    removed = sweep_orphans()
    if removed:
        logger.info(f"removed {removed} temporary folder(s) that killed stillroom jobs left behind")


def run_distillation(task_name: str, user_config: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Steps 1-8; returns the run summary (run id, gate, registered version, metrics, timings).

    Runs this job opened before its distillation run (a plugin-trained teacher's) become that
    run's children; if the job fails or is interrupted first, they are labelled orphans."""
    pm = get_plugin_manager()
    task = pm.task(task_name)
    cfg = load_config(task, user_config, overrides)
    with timed() as timings:
        tracking_uri = tracking.connect(cfg.run.tracking_uri)
        tracking.check_write_access(cfg.run.experiment, cfg.run.registered_model if cfg.run.register_student else None)
        recover_after_killed_jobs([cfg.run.experiment])
        with tracking.job() as opened:
            try:
                with scratch_dir("run") as tmp, use_cache_dir(cfg.run.cache_dir):
                    distillation = run_steps(pm, task, cfg, Path(tmp))
                    return record(pm, distillation, timings, tracking_uri, opened)
            except BaseException as exc:
                tracking.label_orphans(opened, exc)
                raise


def search(
    task: str,
    config: Any = None,
    overrides: list[str] | None = None,
    *,
    budget: str | None = None,
    trials: int | None = None,
    jobs: int | None = None,
    verbose: bool = False,
) -> SearchResult:
    """Search the student and the recipe of ``task`` under a budget (``"30m"``) or a number of
    trials, choose on validation under the config's constraints, then distill, judge on test,
    gate and register the chosen student like :func:`distill`; return the search's result.
    Running the same call again resumes the study (finished trials are not repeated)."""
    with library_call(verbose):
        return SearchResult.from_summary(run_search_job(task, config, overrides or [], budget, trials, jobs))


def run_search_job(
    task_name: str, user_config: Any, overrides: list[str], budget: str | None, trials: int | None, jobs: int | None
) -> dict[str, Any]:
    """The search: config (``budget``, ``trials``, ``jobs`` over ``search.*``), store checks, trials, record."""
    pm = get_plugin_manager()
    task = pm.task(task_name)
    given = {"budget": budget, "n_trials": trials, "jobs": jobs}
    extra = [f"search.{key}={value}" for key, value in given.items() if value is not None]
    cfg = load_config(task, user_config, [*overrides, *extra])
    tracking_uri = tracking.connect(cfg.run.tracking_uri)
    tracking.check_write_access(cfg.run.experiment, cfg.run.registered_model if cfg.run.register_student else None)
    recover_after_killed_jobs([cfg.run.experiment])
    from .searching import run_search  # Optuna is imported by a search only, not by every command

    return run_search(pm, task, cfg, tracking_uri, usable_cores())


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
    overwrite: bool = False,
    trust_unverified: bool = False,
    verbose: bool = False,
) -> ScoreResult:
    """Score ``input_path`` into ``output_path`` with the pinned model version; return the result.

    The alias is resolved to one fixed version before anything is read; the version's files are
    checked against the hashes recorded at registration before any is loaded; the input is
    checked against the model signature before any row is scored; rows stream through in
    chunks; the output is locked while this job writes it (an existing one is replaced only with
    ``overwrite``) and appears atomically; and the job is logged as a scoring run (version, input
    and output digests, rows, throughput, score histogram, PSI against the training scores, and
    the engine that computed the scores). ``local`` streams the file through this process, with
    the compiled student when one was logged and runs here; ``spark`` runs the same version as a
    Spark UDF. With ``raw``, the input holds raw records (raw transactions with their history)
    and is read with the input format the model's run recorded, which computes the model's
    inputs exactly as training did. Quiet unless ``verbose``.
    """
    with library_call(verbose):
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
            overwrite=overwrite,
            trust_unverified=trust_unverified,
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
    overwrite: bool,
    trust_unverified: bool,
) -> ScoreResult:
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r} (use one of {', '.join(ENGINES)})")
    if master and engine != "spark":
        raise DataError("--master is for the spark engine; add --engine spark")
    if engine == "spark":
        _require_pyspark()
    tracking.connect(tracking_uri)
    if log_run:
        tracking.check_write_access(SCORING_EXPERIMENT, None)
        recover_after_killed_jobs([SCORING_EXPERIMENT])
    with OutputSlot(output_path, overwrite) as slot, ExitStack() as stack:
        with step(f"model: resolving {model_uri} and checking its files"):
            model = stack.enter_context(
                tracking.scoring_model(model_uri, compiled=compiled and engine == "local", trust_unverified=trust_unverified)
            )
        return _score_with(
            model, model_uri, input_path, output_path, slot, chunk_rows, passthrough, progress, log_run, engine, master, raw
        )


def _score_with(
    model: tracking.ScoringModel,
    model_uri: str,
    input_path: Path,
    output_path: Path,
    slot: OutputSlot,
    chunk_rows: int,
    passthrough: tuple[str, ...],
    progress: bool,
    log_run: bool,
    engine: str,
    master: str | None,
    raw: bool,
) -> ScoreResult:
    """The scores into the slot's partial file, the scoring run logged, then the output published
    and the run ended together (a failure in between puts the previous output back)."""
    logger.info(f"{model_uri} -> {model.name} version {model.version} ({model.integrity})")
    pm = get_plugin_manager()
    context = ScoringContext(model_uri, model.version, Path(input_path), Path(output_path))
    pm.before_scoring(context)
    expected = [ColumnSpec(c.name, c.dtype, c.shape) for c in model.columns]
    source = Input(Path(input_path), expected, pm.input_formats(), model.config, _raw_format(pm, model) if raw else None)
    if source.named is not None:
        logger.info(f"input: raw records read with {source.named.name}, as the model's run recorded")
        source = replace(source, config={**model.config, **model.input_settings})
    if engine == "spark":
        used, note = f"spark:{master or spark.DEFAULT_MASTER}", "mlflow.pyfunc.spark_udf of the pinned, checked version"
        logger.info(f"engine: {used}")
        with step(f"scoring: {input_path} on Spark"):
            result = _score_spark(model, source, Path(output_path), passthrough, chunk_rows, master, slot)
    else:
        used, note = model.engine, model.engine_note
        logger.info(f"engine: {used} ({note})")
        with step(f"scoring: {input_path}"):
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
                output_formats=pm.output_formats(),
                slot=slot,
            )
    summary: dict[str, Any] = {
        "model": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
        "input": str(input_path),
        "output": str(output_path),
        "input_digest": result.input_digest,
        "output_digest": result.output_digest,
        "output_rows": result.rows,
        "engine": used,
        "engine_note": note,
        "integrity": model.integrity,
        "rows": result.rows,
        "seconds": result.seconds,
        "rows_per_second": result.rows_per_second,
        "score_mean": result.score_mean,
        "unscored_rows": result.unscored_rows,
    }
    if model.reference is not None:
        summary["psi_vs_training"] = psi_from_counts(model.reference["counts"], result.score_counts)
    if log_run:
        summary["run_id"] = _log_and_publish(summary, result, slot, model)
    else:
        with step(f"output: publishing {output_path}"), deferred():
            slot.publish()
    pm.after_scoring(context, summary)
    return ScoreResult(**summary)


def _log_and_publish(summary: dict[str, Any], result: Any, slot: OutputSlot, model: tracking.ScoringModel) -> str:
    """The scoring run, holding everything about the job, ended FINISHED together with the
    output's publication: a run never claims an output that is not there, and an output never
    appears without its run (if ending the run fails, the previous output is put back)."""
    params = ("model", "model_version", "model_uri", "input", "output", "input_digest", "output_digest", "engine", "engine_note")
    numbers = ("rows", "output_rows", "seconds", "rows_per_second", "score_mean", "unscored_rows", "psi_vs_training")
    with (
        step("MLflow: logging the scoring run"),
        tracking.run(
            SCORING_EXPERIMENT,
            f"score {summary['model']} v{summary['model_version']}",
            {
                "stillroom.role": "scoring",
                "stillroom.model_version": f"{model.name}/{model.version}",
                "stillroom.engine": summary["engine"],
                "stillroom.integrity": summary["integrity"][:4900],
                "stillroom.output_sha256": summary["output_digest"],
            },
        ) as run_id,
    ):
        tracking.log_params({k: summary[k] for k in params})
        tracking.log_metrics({k: float(summary[k]) for k in numbers if k in summary})
        tracking.log_dict(
            {"edges": list(map(float, result.bin_edges)), "counts": list(map(int, result.score_counts))}, "score_histogram.json"
        )
        with deferred():
            slot.publish()
            try:
                tracking.finish_run(run_id)
            except BaseException:
                slot.unpublish()
                raise
    return run_id


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
    model: tracking.ScoringModel,
    source: Input,
    output: Path,
    passthrough: tuple[str, ...],
    chunk_rows: int,
    master: str | None,
    slot: OutputSlot,
) -> Any:
    """Spark scores Parquet tables: a vertical's input (raw records ...) is first turned into the
    model's inputs by its reader, here, into a hidden Parquet file beside the output; the scoring
    run still records the digest of the input the user gave. Spark loads the checked copy of the
    version, not the store's files."""
    factory = tracking.spark_udf_factory(str(model.local_dir or model.uri))
    if source.reader() is None:
        return spark.score_parquet(
            factory, source.path, output, source.expected, passthrough=passthrough, master=master, slot=slot
        )
    if any(spec.is_tensor for spec in source.expected):
        raise DataError(
            "the spark engine scores tables; score this input (arrays per row) with the local engine (--engine local)"
        )
    with tempfile.TemporaryDirectory(
        prefix=f".{output.name}.inputs-", dir=output.parent if output.parent.is_dir() else None
    ) as tmp:
        table = Path(tmp) / "inputs.parquet"
        carried = materialize(source, passthrough, chunk_rows, table)
        result = spark.score_parquet(factory, table, output, source.expected, passthrough=carried, master=master, slot=slot)
    result.input_digest = input_sha256(source.path)
    return result


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ModuleNotFoundError as exc:
        raise missing_dependency(exc, "--engine spark") from None


def verify(model_uri: str, *, tracking_uri: str | None = None, verbose: bool = False) -> tracking.Verification:
    """Check a registered version's files against the hashes recorded at registration, and its
    run's status, without loading it (``stillroom verify``)."""
    with library_call(verbose):
        tracking.connect(tracking_uri)
        name, version, _ = tracking.resolve_registered(model_uri)
        return tracking.verify_version(name, version)
