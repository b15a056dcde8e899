"""One distillation, steps 1-7 of the flow in docs/architecture.md.

1 config -> 2 data -> 3 teacher (outputs computed once, cached) -> 4 transfer set ->
5 student + same-size baseline without teacher -> 6 evaluation (CIs, fidelity, calibration,
efficiency) -> 7 gate; then 8, MLflow (audit trail, registered version tagged with the gate).

Steps 1-7 compute a :class:`~stillroom.distillation.result.Distillation`; step 8
(:mod:`stillroom.audit.record`) records it, and :func:`stillroom.api.distill` runs both.
Everything a user can get wrong (config, student settings, data, teacher URI, tracking store)
fails before any MLflow run exists, so a mistake
leaves no run and no model version behind. The one exception is by design: a teacher the
plugin trained is logged in its own run as soon as it is trained (its lineage), so a long
training is never lost to a later failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import tracking
from ..cache import cache_key, cached_outputs, default_cache_dir
from ..contract import config as config_mod
from ..contract.bundle import DataBundle, frame_digest, synthetic_example
from ..contract.config import DistillConfig, StudentConfig
from ..contract.context import EvaluationContext, EvaluationResult
from ..contract.protocols import ModelDescription, Student, Teacher
from ..contract.specs import TaskSpec
from ..errors import ModelLoadError
from ..plugins import StillroomPluginManager
from ..progress import console, step
from ..scoring import spark
from ..scratch import scratch_dir
from ..tasks import kinds
from ..tasks.targets import labels_only, make_targets, missing_labels
from .applicability import gate_config
from .efficiency import Interleaved, measure_interleaved
from .evaluation import operating_thresholds
from .gate import evaluate_gate
from .reference import with_teacher_reference
from .result import Distillation, Outputs, TeacherRecord, TransferSet
from .session import TeacherSession, open_session

EFFICIENCY_ARTIFACT = "efficiency.json"
"""Every round of the interleaved timing, the per-round ratios and their spread."""


def load_config(task: TaskSpec, user: Any = None, overrides: list[str] | None = None) -> DistillConfig:
    cfg = config_mod.resolve(task.config_model, task.default_config, user, overrides)
    if cfg.task != task.name:
        raise config_mod.ConfigError(f"config field 'task' is {cfg.task!r} but the vertical is {task.name!r}")
    return cfg


def distill(
    pm: StillroomPluginManager,
    task: TaskSpec,
    cfg: DistillConfig,
    artifact_dir: Path,
    session: TeacherSession | None = None,
    *,
    split: str = "test",
    after_student: Callable[[Student, TeacherRecord], None] | None = None,
) -> Distillation:
    """Steps 2-7: data, teacher, transfer set, student and baseline, evaluation, gate.

    ``session``: the data and teacher prepared before (a search prepares them once for all its
    trials); by default they are prepared here. ``split``: where the models are judged: ``test``
    for a run, ``validation`` for a search trial (whose students never see the test split).
    ``after_student``: called once the student is fitted, before the baseline (a search prunes
    a trial there when the student already breaks a size constraint)."""
    seed = cfg.run.seed
    # built before any work: a mistake in the student settings must not cost a teacher training
    student = pm.make_student(cfg.student, task, seed)
    baseline: Student | None = pm.make_student(cfg.student, task, seed)
    # the teacher is kept: it is timed interleaved with the student and the baseline once they exist
    session = session or open_session(pm, task, cfg, keep=True)
    teacher = session.teacher
    bundle, transfer, outputs, teacher_model = session.for_config(pm, cfg, needs_model=uses_teacher_model(student))
    if teacher_model is not None:
        student.attach_teacher(teacher_model)  # type: ignore[attr-defined]
    if bundle.reference == "teacher":
        console.log("reference: the teacher's outputs (the data has no labels); no baseline, the teacher is not judged")
        bundle = with_teacher_reference(bundle, outputs.valid["teacher"], outputs.test["teacher"])
        baseline = None
    fit_student(cfg, bundle, transfer, outputs, student)
    if after_student is not None:
        after_student(student, teacher)
    baseline, baseline_config = baseline_after(pm, task, cfg, student, baseline)
    fit_baseline(cfg, bundle, baseline, baseline_config)
    del teacher_model
    students = {"student": student} | ({"baseline": baseline} if baseline is not None else {})
    for role, model in students.items():
        outputs.valid[role] = check_outputs(model.predict(bundle.X(bundle.validation)), bundle, role, "validation")
        if split == "test":  # a search trial's students are never scored on the test split
            outputs.test[role] = check_outputs(model.predict(bundle.X(bundle.test)), bundle, role, "test")
    thresholds = _thresholds(cfg, bundle, outputs)
    judged = bundle.test if split == "test" else bundle.validation
    with step(f"evaluation: teacher, {' and '.join(students)} on the {split} split"):
        ctx = EvaluationContext(
            task,
            bundle,
            judged,
            bundle.y(judged),
            outputs.test if split == "test" else outputs.valid,
            thresholds,
            cfg,
            seed,
            artifact_dir,
            outputs.valid,
        )
        ctx.models = dict(students)
        result = evaluate_all(pm, task, ctx)
    if session.model is None:
        raise RuntimeError("this teacher session did not keep its teacher: it cannot be timed beside its students")
    timing = time_models({"teacher": session.model, **students}, efficiency_batch(bundle, cfg.evaluation.efficiency_rows), cfg)
    descriptions = {"teacher": teacher.description} | {role: model.describe() for role, model in students.items()}
    effs = efficiency_figures(timing, descriptions)
    teacher = replace(teacher, efficiency=effs["teacher"])  # this run's copy: a search shares the session's record
    result.metrics.update(efficiency_metrics(timing, effs))
    (artifact_dir / EFFICIENCY_ARTIFACT).write_text(json.dumps(timing.as_dict(), indent=2))
    result.artifacts.append(EFFICIENCY_ARTIFACT)
    result.metrics.update({f"threshold.{r}": t for r, t in thresholds.items()})
    for name, why in result.not_estimable.items():
        console.log(f"not estimable: {name} ({why})")
    gate = evaluate_gate(
        gate_config(cfg, bundle), result.with_intervals(), result.not_estimable, level=cfg.evaluation.ci_level, split=split
    )
    result.metrics["gate.passed"] = float(gate.passed)
    return Distillation(
        task,
        cfg,
        bundle,
        transfer,
        teacher,
        outputs,
        student,
        baseline,
        thresholds,
        result,
        effs,
        gate,
        artifact_dir,
        data_quality=session.data_quality,
        baseline_config=baseline_config if baseline is not None else None,
    )


def build_transfer_set(pm: StillroomPluginManager, bundle: DataBundle, cfg: DistillConfig, seed: int) -> TransferSet:
    """Labelled training rows + whatever the transfer hooks contribute (pool, MUNGE ...)."""
    with step("transfer set: labelled rows and what the transfer hooks contribute"):
        train_origin = "labelled" if bundle.reference == "labels" else "teacher-labelled"
        parts = [bundle.X(bundle.train).assign(__origin__=train_origin)]
        hard = [_hard_labels(bundle, bundle.train)]
        for frame in pm.transfer_points(bundle, cfg, np.random.default_rng(seed + 1)):
            origin = frame.pop("__origin__") if "__origin__" in frame else pd.Series("plugin", index=frame.index)
            parts.append(frame[bundle.features].assign(__origin__=origin.to_numpy()))
            hard.append(missing_labels(bundle.task_type, len(frame), bundle.n_outputs))
        X = pd.concat(parts, ignore_index=True)
        labels = np.concatenate(hard)
        if cfg.transfer.max_points and len(X) > cfg.transfer.max_points:
            keep = np.sort(np.random.default_rng(seed + 2).choice(len(X), cfg.transfer.max_points, replace=False))
            X, labels = X.iloc[keep].reset_index(drop=True), labels[keep]
        origin_col = X.pop("__origin__").to_numpy()
    transfer = TransferSet(X=X, origin=origin_col, hard=labels)
    console.log("transfer set: " + ", ".join(f"{rows:,} {origin}" for origin, rows in transfer.composition().items()))
    return transfer


def _hard_labels(bundle: DataBundle, frame: pd.DataFrame) -> np.ndarray:
    """A split's hard labels for the student to learn from; none when the teacher's outputs are
    the reference (the student then learns those outputs, not the teacher's calls on them)."""
    if bundle.reference == "teacher":
        return missing_labels(bundle.task_type, len(frame), bundle.n_outputs)
    return bundle.y(frame).astype(float)


def uses_teacher_model(student: Student) -> bool:
    """Whether the student learns from the teacher's internals (feature- or relation-based
    distillation), not only from its outputs: then it gets the teacher via ``attach_teacher``."""
    return bool(getattr(student, "uses_teacher_model", False)) and hasattr(student, "attach_teacher")


def teacher_phase(
    pm: StillroomPluginManager, task: TaskSpec, cfg: DistillConfig, bundle: DataBundle, transfer: TransferSet, keep: bool = False
) -> tuple[TeacherRecord, Outputs, Teacher | None]:
    """Build or load the teacher, compute its outputs once (cached), record its lineage.

    ``keep``: return the model too (a student learning from its internals; a run keeps it to
    time it interleaved with the student and the baseline once they exist, see
    :func:`time_models`); otherwise it is dropped when this returns.
    """
    seed = cfg.run.seed
    with step(f"teacher: building {cfg.teacher.name or cfg.teacher.uri}"):
        teacher = pm.make_teacher(cfg.teacher, task, bundle, seed)
    desc = teacher.describe()
    frames = [transfer.X, bundle.X(bundle.validation), bundle.X(bundle.test)]
    everything = pd.concat(frames, ignore_index=True)
    identity = desc.details.get("identity") or (f"{desc.uri}|{desc.version}" if desc.uri else None)
    key = outputs_key(identity, bundle, everything) if identity else None
    with step(f"teacher: scoring {len(everything):,} rows (transfer + validation + test)"):
        values, hit = cached_outputs(default_cache_dir(), key, lambda: _label(teacher, everything, cfg))
    values = check_outputs(values, bundle, "teacher", "transfer + validation + test", rows=len(everything))
    if hit:
        console.log("teacher outputs taken from the cache")
    transfer_p, valid_p, test_p = np.split(values, np.cumsum([len(f) for f in frames])[:-1])
    source = cfg.teacher.uri or f"plugin:{cfg.teacher.name}"
    record_ = TeacherRecord(desc, {}, source, _teacher_model_id(teacher, desc, cfg, bundle))  # efficiency: time_models
    outputs = Outputs(transfer_teacher=transfer_p, valid={"teacher": valid_p}, test={"teacher": test_p})
    return record_, outputs, (teacher if keep else None)


def outputs_key(identity: str, bundle: DataBundle, rows: pd.DataFrame) -> str:
    """The cache key of a teacher's outputs: the teacher (a plugin-trained one's identity is its
    :func:`~stillroom.contract.teacher_cache_key`), the rows it scores (values, feature names and
    order), and the task's shape of outputs (task type, output kinds, label columns)."""
    task = json.dumps([bundle.task_type, bundle.output_types, bundle.labels, bundle.class_names], default=str)
    return cache_key(identity, task, frame_digest(rows))


def label_rows(teacher: Teacher, rows: pd.DataFrame, bundle: DataBundle, cfg: DistillConfig) -> np.ndarray:
    """The teacher's checked outputs on further rows (a search trial's own transfer set)."""
    return check_outputs(_label(teacher, rows, cfg), bundle, "teacher", "transfer", rows=len(rows))


def _label(teacher: Teacher, rows: pd.DataFrame, cfg: DistillConfig) -> np.ndarray:
    """The teacher's outputs on ``rows``: in this process, or through Spark (``teacher.spark_master``)."""
    if not cfg.teacher.spark_master:
        # a teacher may label in bulk more cheaply than it predicts (reusing what it computed
        # while training); efficiency is always timed through predict (or its runtimes)
        return (getattr(teacher, "label", None) or teacher.predict)(rows)
    console.log(f"teacher: labelling {len(rows):,} rows through Spark on {cfg.teacher.spark_master}")
    with scratch_dir("teacher-spark") as tmp:
        factory = tracking.teacher_spark_udf_factory(str(cfg.teacher.uri))
        return spark.label_rows(factory, rows, cfg.teacher.spark_master, Path(tmp))


def check_outputs(values: Any, bundle: DataBundle, role: str, where: str, rows: int | None = None) -> np.ndarray:
    """A model's outputs must have the task type's shape and be finite; say whose are wrong.

    A teacher loaded from a URI can be a model for another task (a regressor where a
    classifier was expected, three classes where the labels have two): that must stop the
    run here, in one sentence, not deep inside a metric.
    """
    try:
        out = kinds.conform_outputs(bundle.task_type, values, bundle.n_outputs, rows)
    except ValueError as exc:
        raise ModelLoadError(f"{role} outputs on {where} {exc}") from None
    if not np.isfinite(out).all():
        raise ModelLoadError(f"{role} outputs on {where} contain NaN or inf")
    return out


def _thresholds(cfg: DistillConfig, bundle: DataBundle, outputs: Outputs) -> dict[str, float]:
    """Each model's operating threshold, chosen on validation (binary tasks only)."""
    if not kinds.has_scalar_output(bundle.task_type):
        return {}
    op = cfg.evaluation.operating_point
    return operating_thresholds(op.kind, op.value, bundle.y(bundle.validation), outputs.valid)


def _teacher_model_id(teacher: Teacher, desc: ModelDescription, cfg: DistillConfig, bundle: DataBundle) -> str | None:
    """Log a plugin-trained teacher in its own run (its lineage); link an MLflow teacher.

    A tabular teacher gets a signature from a synthetic example, so the logged model can be
    served or run in Spark by column name (``teacher.spark_master`` with its URI).
    """
    if getattr(teacher, "model_id", None):
        return teacher.model_id  # type: ignore[attr-defined]
    native = teacher.native_model()
    if native is None:
        return None
    with step("teacher: logging to MLflow"):
        return tracking.log_teacher_model(
            native,
            desc.name,
            cfg.run.experiment,
            {"kind": desc.kind, "n_parameters": desc.n_parameters, "size_bytes": desc.size_bytes, **desc.details},
            None if bundle.opaque_features else synthetic_example(bundle.X(bundle.train), seed=cfg.run.seed),
        )


def efficiency_batch(bundle: DataBundle, rows: int) -> pd.DataFrame:
    """The one batch every model is timed on: test rows first, then validation and train.

    Throughput needs no labels, and a held-out split alone can be too small to time a batch
    job fairly; the same rows for teacher, student and baseline make the ratios honest.
    """
    frames = [bundle.test, bundle.validation, bundle.train]
    return pd.concat([bundle.X(f.iloc[:rows]) for f in frames], ignore_index=True).iloc[:rows]


def runtimes_of(model: Any) -> dict[str, Any]:
    """The runtimes a model can score in, by name (``runtimes()``, first = the one it ships in),
    or its ``predict`` alone."""
    offered = getattr(model, "runtimes", None)
    return dict(offered()) if callable(offered) else {"predict": model.predict}


def time_models(models: dict[str, Any], batch: pd.DataFrame, cfg: DistillConfig) -> Interleaved:
    """Teacher, student and baseline timed interleaved, in every runtime all of them offer.

    A model offering several runtimes (the medical networks: ONNX Runtime and torch) is timed
    in each; only runtimes every model offers are compared, in the student's order (its first
    is what the speed rule reads). Models without named runtimes are timed through ``predict``.
    Every model runs on ``evaluation.efficiency_cores`` (one core by default: per-core cost is
    what compares models that parallelise differently, see :mod:`.cores`).
    """
    offered = {role: runtimes_of(model) for role, model in models.items()}
    shared = [rt for rt in offered["student"] if all(rt in o for o in offered.values())]
    if not shared:
        shared, offered = ["predict"], {role: {"predict": model.predict} for role, model in models.items()}
    for role, o in offered.items():
        if skipped := [rt for rt in o if rt not in shared]:
            console.log(f"efficiency: {role} also runs in {', '.join(skipped)}, which not every model offers; not timed")
    ev = cfg.evaluation
    on = "every core" if ev.efficiency_cores == "all" else f"{ev.efficiency_cores} core(s)"
    with step(f"efficiency: {', '.join(models)} interleaved, {ev.efficiency_rounds} rounds ({', '.join(shared)}) on {on}"):
        timing = measure_interleaved(
            {role: {rt: offered[role][rt] for rt in shared} for role in models},
            batch,
            batch_rows=len(batch),
            rounds=ev.efficiency_rounds,
            latency_calls=ev.latency_repeats,
            max_seconds=ev.efficiency_max_seconds,
            seed=cfg.run.seed,
            cores=ev.efficiency_cores,
        )
    console.log(f"efficiency: timed on {timing.compute['summary']}")
    return timing


def efficiency_figures(timing: Interleaved, descriptions: dict[str, ModelDescription]) -> dict[str, dict[str, float]]:
    """Each role's figures in the first runtime, with its parameters and bytes."""
    runtime = timing.runtimes[0]
    return {
        role: timing.figures(runtime, role) | {"n_parameters": float(desc.n_parameters), "size_bytes": float(desc.size_bytes)}
        for role, desc in descriptions.items()
    }


def fit_student(cfg: DistillConfig, bundle: DataBundle, transfer: TransferSet, outputs: Outputs, student: Student) -> None:
    """The student on the transfer set, learning the teacher's outputs blended with labels."""
    recipe, kind, output_types = cfg.recipe, bundle.task_type, bundle.output_types
    mix = (recipe.temperature, recipe.alpha, output_types)
    targets = make_targets(kind, transfer.hard, outputs.transfer_teacher, *mix)
    valid_targets = make_targets(kind, _hard_labels(bundle, bundle.validation), outputs.valid["teacher"], *mix)
    if hasattr(student, "name_outputs"):
        student.name_outputs(list(bundle.output_names))
    with step(
        f"student: distilling {cfg.student.name} on {len(transfer.X):,} transfer rows "
        f"(T={recipe.temperature}, alpha={recipe.alpha})"
    ):
        student.fit(transfer.X, targets, bundle.X(bundle.validation), valid_targets)


def baseline_after(
    pm: StillroomPluginManager, task: TaskSpec, cfg: DistillConfig, student: Student, baseline: Student | None
) -> tuple[Student | None, StudentConfig]:
    """The baseline to train once the student is fitted, and its config.

    By default the baseline is ``cfg.student`` built again (``baseline``, built before any work
    so that a bad setting fails early). A student that chose what it ships (the molecules
    vertical's ``molecules.auto`` picks a kind and capacity on validation) offers
    ``baseline_spec()``: the config of what it shipped. The baseline is then that model trained on
    labels only, the comparison the gain is meant to be ("the same student without a teacher"),
    instead of a choice of its own on labels, which may land elsewhere and costs every
    candidate's training again (about 640 CPU-seconds on a 41k-molecule set)."""
    spec_of = getattr(student, "baseline_spec", None)
    if baseline is None or spec_of is None:
        return baseline, cfg.student
    spec = StudentConfig.model_validate(spec_of())
    console.log(f"baseline: {spec.name} {spec.params}, the student's choice, trained without a teacher")
    return pm.make_student(spec, task, cfg.run.seed), spec


def fit_baseline(cfg: DistillConfig, bundle: DataBundle, baseline: Student | None, spec: StudentConfig | None = None) -> None:
    """The same student on the labelled rows only (nothing when there is no baseline)."""
    if baseline is None:
        return
    kind, output_types = bundle.task_type, bundle.output_types
    if hasattr(baseline, "name_outputs"):
        baseline.name_outputs(list(bundle.output_names))
    name = (spec or cfg.student).name
    with step(f"baseline: training the same {name} on {len(bundle.train):,} labelled rows only"):
        baseline.fit(
            bundle.X(bundle.train),
            labels_only(kind, bundle.y(bundle.train), output_types),
            bundle.X(bundle.validation),
            labels_only(kind, bundle.y(bundle.validation), output_types),
        )


def evaluate_all(pm: StillroomPluginManager, task: TaskSpec, ctx: EvaluationContext) -> EvaluationResult:
    """Every evaluator registered for the task (and the generic ones), merged."""
    result = EvaluationResult()
    for evaluator in pm.registry.for_task("evaluator", task.name):
        result.update(evaluator.evaluate(ctx))
    return result


SPEEDUPS = {"batch_n": "speedup_rows_per_second", "batch_1": "speedup_latency"}
"""Metric names of the paired ratios: teacher time / model time at the scoring batch and at one row."""
RUNTIME_FIELDS = ("latency_p50_ms", "latency_p99_ms", "rows_per_second", "cpu_seconds_per_million")


def efficiency_metrics(timing: Interleaved, effs: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flat metrics: each role's figures, and the paired ratios of the interleaved rounds.

    ``efficiency.speedup_rows_per_second`` (what speed rules read) is the student's speed-up
    at the scoring batch in the first runtime: the median teacher time over the median student
    time of the same rounds; ``.min`` / ``.max`` are the extremes of the per-round ratios.
    ``efficiency.speedup_latency`` is the same at one row per call; the baseline's ratios are
    under ``efficiency.baseline.``. With several runtimes each has its figures and ratios
    under its name (``efficiency.onnxruntime.speedup_rows_per_second``,
    ``efficiency.student.onnxruntime.rows_per_second``).
    """
    out = {f"efficiency.{role}.{k}": v for role, eff in effs.items() for k, v in eff.items()}
    named = timing.runtimes != ["predict"]
    for i, runtime in enumerate(timing.runtimes):
        prefixes = ([""] if i == 0 else []) + ([f"{runtime}."] if named else [])
        for prefix in prefixes:
            for role in (r for r in timing.roles if r != "teacher"):
                where = "efficiency." + ("" if role == "student" else f"{role}.") + prefix
                for size, name in SPEEDUPS.items():
                    summary = timing.ratio_summary(runtime, "teacher", role, size)
                    out[where + name] = summary["ratio_of_medians"]
                    out[f"{where}{name}.min"], out[f"{where}{name}.max"] = summary["min"], summary["max"]
        if named:
            for role in timing.roles:
                figures = timing.figures(runtime, role)
                out.update({f"efficiency.{role}.{runtime}.{k}": figures[k] for k in RUNTIME_FIELDS})
    t, s = effs["teacher"], effs["student"]
    if t["size_bytes"]:
        out["efficiency.size_ratio"] = s["size_bytes"] / t["size_bytes"]
    if t["cpu_seconds_per_million"]:
        out["efficiency.energy_ratio"] = s["cpu_seconds_per_million"] / t["cpu_seconds_per_million"]
    return out
