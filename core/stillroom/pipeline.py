"""One distillation run, the eight steps of DESIGN.md.

1 config -> 2 data -> 3 teacher (outputs computed once, cached) -> 4 transfer set ->
5 student + same-size baseline without teacher -> 6 evaluation (CIs, fidelity, calibration,
efficiency) -> 7 gate -> 8 MLflow (audit trail, registered version tagged with the gate).

Everything a user can get wrong (config, data, teacher URI, tracking store) is checked
before the MLflow run starts, so a mistake leaves no run and no model version behind.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from rich.console import Console

from . import __version__, config as config_mod, metrics, tracking
from .cache import cache_key, cached_outputs, default_cache_dir
from .config import DistillConfig
from .context import EvaluationContext, EvaluationResult, RunContext
from .data import DataBundle, frame_digest, synthetic_example, validate_bundle
from .efficiency import measure_efficiency
from .evaluation import operating_thresholds, results_table
from .gate import GateResult, evaluate_gate
from .manifest import build_manifest
from .modelcard import render_markdown
from .plugins import StillroomPluginManager, get_plugin_manager
from .protocols import ModelDescription, Student, Teacher
from .registry import TaskSpec
from .targets import distillation_targets

console = Console(stderr=True)
ROLES = ("teacher", "student", "baseline")


@dataclass
class TransferSet:
    """Inputs the student learns from, where each row came from, and labels where known."""

    X: pd.DataFrame
    origin: np.ndarray
    hard: np.ndarray  # NaN where no label (pool, synthetic)

    def composition(self) -> dict[str, int]:
        names, counts = np.unique(self.origin, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts)}


@dataclass
class Outputs:
    """Validation and test predictions of every role, plus teacher outputs on the transfer set."""

    transfer_teacher: np.ndarray
    valid: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a long step while it runs and how long it took when done."""
    start = time.perf_counter()
    with console.status(f"[bold]{title}[/bold] ..."):
        yield
    console.log(f"{title}: done in {time.perf_counter() - start:.1f}s")


def load_config(task: TaskSpec, user: Any = None, overrides: list[str] | None = None) -> DistillConfig:
    cfg = config_mod.resolve(task.config_model, task.default_config, user, overrides)
    if cfg.task != task.name:
        raise config_mod.ConfigError(f"config field 'task' is {cfg.task!r} but the vertical is {task.name!r}")
    return cfg


def run_distillation(task_name: str, user_config: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Steps 1-8; returns the run summary (run id, gate, registered version, metrics)."""
    pm = get_plugin_manager()
    task = pm.task(task_name)
    cfg = load_config(task, user_config, overrides)
    tracking_uri = tracking.connect(cfg.run.tracking_uri)
    seed = cfg.run.seed
    with step("data: loading splits"):
        bundle = pm.registry.get("dataset", cfg.data.dataset).load(cfg.data, seed)
        validate_bundle(bundle)
    with step(f"teacher: building {cfg.teacher.name or cfg.teacher.uri}"):
        teacher = pm.make_teacher(cfg.teacher, task, bundle, seed)
    transfer = build_transfer_set(pm, bundle, cfg, seed)
    outputs, teacher_eff, teacher_desc = teacher_phase(teacher, bundle, transfer, cfg)
    teacher_model_id = _teacher_model_id(teacher, teacher_desc, cfg)
    del teacher  # the student trains from cached outputs; the teacher can go
    tags = {"stillroom.task": task.name, "stillroom.version": __version__, "stillroom.role": "distillation"}
    with tracking.run(cfg.run.experiment, f"distill {task.name}: {teacher_desc.name} -> {cfg.student.name}", tags) as run_id:
        context = RunContext(task=task, config=cfg, run_id=run_id)
        pm.before_run(context)
        summary = _distill_in_run(pm, task, cfg, bundle, transfer, outputs, teacher_eff, teacher_desc, teacher_model_id, run_id)
        summary["tracking_uri"] = tracking_uri
        pm.after_run(context, summary)
    print_summary(summary)
    return summary


def build_transfer_set(pm: StillroomPluginManager, bundle: DataBundle, cfg: DistillConfig, seed: int) -> TransferSet:
    """Labelled training rows + whatever the transfer hooks contribute (pool, MUNGE ...)."""
    with step("transfer set: labelled + unlabelled pool + synthetic points"):
        parts = [bundle.X(bundle.train).assign(__origin__="labelled")]
        hard = [bundle.y(bundle.train).astype(float)]
        for frame in pm.transfer_points(bundle, cfg, np.random.default_rng(seed + 1)):
            origin = frame.pop("__origin__") if "__origin__" in frame else pd.Series("plugin", index=frame.index)
            parts.append(frame[bundle.features].assign(__origin__=origin.to_numpy()))
            hard.append(np.full(len(frame), np.nan))
        X = pd.concat(parts, ignore_index=True)
        labels = np.concatenate(hard)
        if cfg.transfer.max_points and len(X) > cfg.transfer.max_points:
            keep = np.sort(np.random.default_rng(seed + 2).choice(len(X), cfg.transfer.max_points, replace=False))
            X, labels = X.iloc[keep].reset_index(drop=True), labels[keep]
        origin_col = X.pop("__origin__").to_numpy()
    return TransferSet(X=X, origin=origin_col, hard=labels)


def teacher_phase(teacher: Teacher, bundle: DataBundle, transfer: TransferSet, cfg: DistillConfig) -> tuple[Outputs, dict[str, float], ModelDescription]:
    """Teacher outputs on transfer, validation and test (once, cached) and its efficiency."""
    desc = teacher.describe()
    frames = [transfer.X, bundle.X(bundle.validation), bundle.X(bundle.test)]
    sizes = [len(f) for f in frames]
    everything = pd.concat(frames, ignore_index=True)
    identity = desc.details.get("identity") or (f"{desc.uri}|{desc.version}" if desc.uri else None)
    key = cache_key(identity, frame_digest(everything)) if identity else None
    cache_dir = Path(cfg.run.cache_dir) if cfg.run.cache_dir else default_cache_dir()
    with step(f"teacher: scoring {len(everything):,} rows (transfer + validation + test)"):
        values, hit = cached_outputs(cache_dir, key, lambda: teacher.predict(everything))
    if hit:
        console.log("teacher outputs taken from the cache")
    transfer_p, valid_p, test_p = np.split(values, np.cumsum(sizes)[:-1])
    with step("teacher: measuring efficiency"):
        eff = _efficiency(teacher.predict, efficiency_batch(bundle, cfg.evaluation.efficiency_rows), cfg, desc)
    return Outputs(transfer_teacher=transfer_p, valid={"teacher": valid_p}, test={"teacher": test_p}), eff, desc


def _teacher_model_id(teacher: Teacher, desc: ModelDescription, cfg: DistillConfig) -> str | None:
    """Log a plugin-trained teacher in its own run (its lineage); link an MLflow teacher."""
    if getattr(teacher, "model_id", None):
        return teacher.model_id  # type: ignore[attr-defined]
    native = teacher.native_model()
    if native is None:
        return None
    with step("teacher: logging to MLflow"):
        return tracking.log_teacher_model(native, desc.name, cfg.run.experiment, {"kind": desc.kind, "n_parameters": desc.n_parameters, "size_bytes": desc.size_bytes, **desc.details})


def efficiency_batch(bundle: DataBundle, rows: int) -> pd.DataFrame:
    """The one batch every model is timed on: test rows first, then validation and train.

    Throughput needs no labels, and a held-out split alone can be too small to time a batch
    job fairly; the same rows for teacher, student and baseline make the ratios honest.
    """
    frames = [bundle.test, bundle.validation, bundle.train]
    return pd.concat([bundle.X(f.iloc[:rows]) for f in frames], ignore_index=True).iloc[:rows]


def _efficiency(predict: Any, batch: pd.DataFrame, cfg: DistillConfig, desc: ModelDescription) -> dict[str, float]:
    eff = measure_efficiency(predict, batch, latency_repeats=cfg.evaluation.latency_repeats)
    out = eff.as_metrics("")
    return {k.lstrip("."): v for k, v in out.items()} | {"n_parameters": float(desc.n_parameters), "size_bytes": float(desc.size_bytes)}


def train_students(pm: StillroomPluginManager, task: TaskSpec, cfg: DistillConfig, bundle: DataBundle, transfer: TransferSet, outputs: Outputs) -> tuple[Student, Student]:
    """The distilled student and the same-size baseline trained on hard labels only."""
    seed = cfg.run.seed
    recipe = cfg.recipe
    targets = distillation_targets(outputs.transfer_teacher, transfer.hard, recipe.temperature, recipe.alpha)
    valid_targets = distillation_targets(outputs.valid["teacher"], bundle.y(bundle.validation).astype(float), recipe.temperature, recipe.alpha)
    with step(f"student: distilling {cfg.student.name} on {len(transfer.X):,} transfer rows"):
        student = pm.make_student(cfg.student, task, seed)
        student.fit(transfer.X, targets, bundle.X(bundle.validation), valid_targets)
    with step(f"baseline: training the same {cfg.student.name} on {len(bundle.train):,} labelled rows only"):
        baseline = pm.make_student(cfg.student, task, seed)
        baseline.fit(bundle.X(bundle.train), bundle.y(bundle.train).astype(float), bundle.X(bundle.validation), bundle.y(bundle.validation).astype(float))
    return student, baseline


def _distill_in_run(pm, task, cfg, bundle, transfer, outputs, teacher_eff, teacher_desc, teacher_model_id, run_id) -> dict[str, Any]:  # noqa: ANN001
    seed = cfg.run.seed
    frames = {"train": bundle.train, "validation": bundle.validation, "test": bundle.test}
    if bundle.unlabelled is not None and len(bundle.unlabelled):
        frames["unlabelled"] = bundle.unlabelled
    digests = {k: frame_digest(v) for k, v in frames.items()}
    transfer_frame = transfer.X.assign(origin=transfer.origin)
    frames["transfer"], digests["transfer"] = transfer_frame, frame_digest(transfer_frame)
    datasets = tracking.log_datasets(frames, digests, bundle.source, bundle.label)
    tracking.log_teacher_input(teacher_model_id)
    params = config_mod.flatten(cfg) | {
        "teacher.source": cfg.teacher.uri or f"plugin:{cfg.teacher.name}",
        "teacher.kind": teacher_desc.kind,
        "transfer.rows": len(transfer.X),
        **{f"transfer.rows.{k}": v for k, v in transfer.composition().items()},
    }
    tracking.log_params(params)
    tracking.set_tags({"stillroom.plugins": _plugin_inventory(pm), "stillroom.teacher": teacher_desc.name})

    student, baseline = train_students(pm, task, cfg, bundle, transfer, outputs)
    for role, model in (("student", student), ("baseline", baseline)):
        outputs.valid[role] = model.predict(bundle.X(bundle.validation))
        outputs.test[role] = model.predict(bundle.X(bundle.test))
    op = cfg.evaluation.operating_point
    thresholds = operating_thresholds(op.kind, op.value, bundle.y(bundle.validation), outputs.valid)

    with tempfile.TemporaryDirectory(prefix="stillroom-run-") as tmp:
        root = Path(tmp)
        with step("evaluation: teacher, student and baseline on the test split"):
            ctx = EvaluationContext(task, bundle, bundle.test, bundle.y(bundle.test), outputs.test, thresholds, cfg, seed, root, outputs.valid)
            result = evaluate_all(pm, task, ctx)
        with step("efficiency: student and baseline"):
            effs = {"teacher": teacher_eff}
            batch = efficiency_batch(bundle, cfg.evaluation.efficiency_rows)
            for role, model in (("student", student), ("baseline", baseline)):
                effs[role] = _efficiency(model.predict, batch, cfg, model.describe())
        result.metrics.update(_efficiency_metrics(effs))
        result.metrics.update({f"threshold.{r}": t for r, t in thresholds.items()})
        gate = evaluate_gate(cfg.gate.rules, result.metrics)
        result.metrics["gate.passed"] = float(gate.passed)

        with step("MLflow: logging the student model"):
            example = synthetic_example(bundle.X(bundle.train), seed=seed)
            logged = tracking.log_student_model(student.native_model(), example)
        tracking.log_metrics(_with_intervals(result), model_id=logged.model_id, dataset=datasets["test"])
        _write_run_artifacts(root, task, cfg, bundle, transfer, teacher_desc, student, baseline, outputs, result, gate, effs, thresholds, pm)
        manifest = build_manifest(root, logged.files, {"run_id": run_id, "model_uri": logged.model_uri})
        (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
        tracking.log_artifacts(root)
    tracking.set_tags({"stillroom.gate": gate.status, "stillroom.student_model_id": logged.model_id})
    version = None
    if cfg.run.register_student:
        with step(f"registry: registering {cfg.run.registered_model}"):
            version = tracking.register(
                logged.model_uri,
                cfg.run.registered_model,
                tags={"stillroom.gate": gate.status, "stillroom.task": task.name, "stillroom.run_id": run_id, "stillroom.gate_reasons": "; ".join(gate.reasons())[:4900]},
                description=f"{task.name} student distilled from {teacher_desc.name}; gate {gate.status}.",
            )
        tracking.set_tags({"stillroom.registered_version": f"{cfg.run.registered_model}/{version}"})
    return {
        "run_id": run_id,
        "task": task.name,
        "gate": gate.status,
        "gate_reasons": gate.reasons(),
        "registered_model": cfg.run.registered_model if version else None,
        "version": version,
        "model_uri": logged.model_uri,
        "metrics": result.metrics,
        "intervals": result.intervals,
    }


def evaluate_all(pm: StillroomPluginManager, task: TaskSpec, ctx: EvaluationContext) -> EvaluationResult:
    """Every evaluator registered for the task (and the generic ones), merged."""
    result = EvaluationResult()
    for evaluator in pm.registry.for_task("evaluator", task.name):
        result.update(evaluator.evaluate(ctx))
    return result


def _efficiency_metrics(effs: dict[str, dict[str, float]]) -> dict[str, float]:
    out = {f"efficiency.{role}.{k}": v for role, eff in effs.items() for k, v in eff.items()}
    t, s = effs["teacher"], effs["student"]
    out["efficiency.speedup_rows_per_second"] = s["rows_per_second"] / t["rows_per_second"]
    if t["size_bytes"]:
        out["efficiency.size_ratio"] = s["size_bytes"] / t["size_bytes"]
    if s["cpu_seconds_per_million"]:
        out["efficiency.energy_ratio"] = s["cpu_seconds_per_million"] / t["cpu_seconds_per_million"]
    return out


def _with_intervals(result: EvaluationResult) -> dict[str, float]:
    out = dict(result.metrics)
    for key, (low, high) in result.intervals.items():
        out[f"{key}.ci_low"], out[f"{key}.ci_high"] = low, high
    return out


def _write_run_artifacts(root, task, cfg, bundle, transfer, teacher_desc, student, baseline, outputs, result, gate, effs, thresholds, pm) -> None:  # noqa: ANN001
    """Config, lineage, environment, metrics, gate, reference scores, model card."""
    (root / "config.yaml").write_text(config_mod.dump(cfg))
    lineage = bundle.lineage() | {"transfer": transfer.composition(), "teacher": _describe(teacher_desc)}
    (root / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
    (root / "environment.json").write_text(json.dumps(environment(pm), indent=2))
    (root / "metrics.json").write_text(json.dumps({"metrics": result.metrics, "intervals": result.intervals}, indent=2))
    (root / "gate.json").write_text(json.dumps(gate.as_dict(), indent=2))
    reference = root / "reference"
    reference.mkdir(exist_ok=True)
    train_scores = student.predict(bundle.X(bundle.train))
    (reference / "score_histogram.json").write_text(json.dumps(metrics.histogram(train_scores), default=_jsonable))
    for name, table in result.tables.items():
        (root / "tables").mkdir(exist_ok=True)
        table.to_csv(root / "tables" / f"{name}.csv", index=False)
    card = model_card(task, cfg, bundle, transfer, teacher_desc, student.describe(), baseline.describe(), result, gate, effs, thresholds)
    (root / "model_card.json").write_text(json.dumps(card, indent=2, default=_jsonable))
    (root / "model_card.md").write_text(render_markdown(card))


def model_card(task, cfg, bundle, transfer, teacher_desc, student_desc, baseline_desc, result, gate, effs, thresholds) -> dict[str, Any]:  # noqa: ANN001
    """The Mitchell et al. sections filled from the run."""
    headline = ["roc_auc", "average_precision", "brier", "ece"]
    effs_rows = [{"model": role, **{k: effs[role][k] for k in ("n_parameters", "size_bytes", "latency_p50_ms", "latency_p99_ms", "rows_per_second", "cpu_seconds_per_million")}} for role in ROLES]
    return {
        "title": f"{cfg.run.registered_model} ({task.name})",
        "model_details": {
            "task": f"{task.name}: {task.description}",
            "student": _describe(student_desc),
            "teacher": _describe(teacher_desc),
            "baseline": "same student architecture and settings, trained on hard labels only (no teacher)",
            "recipe": f"response-based distillation, temperature {cfg.recipe.temperature}, alpha {cfg.recipe.alpha}",
            "stillroom version": __version__,
            "date": time.strftime("%Y-%m-%d"),
        },
        "intended_use": task.card.get("intended_use", task.description),
        "factors": task.card.get("factors", f"subgroup column: {bundle.group or 'none'}"),
        "metrics": {
            "operating point": f"{cfg.evaluation.operating_point.kind} = {cfg.evaluation.operating_point.value} chosen on validation, then fixed",
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
            "intervals": f"{cfg.evaluation.ci_level:.0%} percentile bootstrap, {cfg.evaluation.bootstrap} resamples of the test split",
            "definitions": task.card.get("metrics", "ROC-AUC, average precision, Brier, ECE, fidelity (agreement, Spearman, mean absolute gap)"),
        },
        "evaluation_data": {"split": "test", "rows": len(bundle.test), "source": bundle.source},
        "training_data": {"labelled rows": len(bundle.train), "transfer set": transfer.composition(), "source": bundle.source},
        "quantitative_analyses": {
            "performance": {"table": results_table(headline, result.metrics, result.intervals, list(ROLES))},
            "retention and gain": {k: round(v, 6) for k, v in result.metrics.items() if k.startswith(("retention.", "gain.", "fidelity."))},
            "efficiency": {"table": effs_rows},
        },
        "gate": {"status": gate.status, "rules": gate.reasons()},
        "ethical_considerations": task.card.get("ethical_considerations", "See the vertical's documentation."),
        "caveats_and_recommendations": task.card.get("caveats", "Re-validate before use on data from another population or period."),
    }


def _describe(desc: ModelDescription) -> dict[str, Any]:
    return {"name": desc.name, "kind": desc.kind, "n_parameters": desc.n_parameters, "size_bytes": desc.size_bytes, "uri": desc.uri, "version": desc.version, **desc.details}


def environment(pm: StillroomPluginManager) -> dict[str, Any]:
    """Versions, machine and git commit: what a reviewer needs to reproduce the run."""
    import importlib.metadata as md

    packages = {}
    for dist in ("stillroom", "mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "torch", "rdkit", "pluggy", "pydantic"):
        try:
            packages[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "packages": packages,
        "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version, "error": p.error} for p in pm.inventory],
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _plugin_inventory(pm: StillroomPluginManager) -> str:
    return ", ".join(f"{p.distribution}=={p.version}" for p in pm.inventory if not p.error)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def print_summary(summary: dict[str, Any]) -> None:
    """The result as a table a person can read."""
    from rich.table import Table

    values, intervals = summary["metrics"], summary["intervals"]
    table = Table(title=f"{summary['task']}: teacher vs student vs baseline (test split)")
    names = ["roc_auc", "average_precision", "brier", "ece"]
    table.add_column("model")
    for n in names:
        table.add_column(n)
    for row in results_table(names, values, intervals, list(ROLES)):
        table.add_row(row["model"], *[row.get(n, "") for n in names])
    console.print(table)
    for key in ("retention.average_precision", "gain.average_precision", "fidelity.agreement", "fidelity.spearman", "efficiency.speedup_rows_per_second", "efficiency.size_ratio"):
        if key in values:
            console.print(f"  {key}: {values[key]:.4f}")
    console.print(f"gate: [bold]{summary['gate']}[/bold]")
    for reason in summary["gate_reasons"]:
        console.print(f"  {reason}")
    if summary.get("version"):
        console.print(f"registered: models:/{summary['registered_model']}/{summary['version']} (run {summary['run_id']})")
