"""The core's own hook implementations: generic evaluation, the core compliance profile,
teachers from URIs/files, students and teachers from the registry, and the transfer set's
unlabelled pool and MUNGE points.

They are ``trylast`` where a vertical may want to take over (model building).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from . import hookimpl
from .data import DataBundle
from .evaluation import evaluate_generic
from .registry import ComplianceProfile, EvaluatorSpec, TaskSpec
from .taskmetrics import MIXED_KINDS

ROLES = ("teacher", "student", "baseline")
EFFICIENCY_METRICS = tuple(
    f"efficiency.{r}.{m}"
    for r in ROLES
    for m in ("n_parameters", "size_bytes", "latency_p50_ms", "latency_p99_ms", "rows_per_second", "cpu_seconds_per_million")
)
CORE_ARTIFACTS = (
    "model_card.md",
    "model_card.json",
    "manifest.json",
    "config.yaml",
    "lineage.json",
    "environment.json",
    "gate.json",
    "metrics.json",
)
TASK_TYPE_METRICS = {
    "binary": (
        *(f"{r}.{m}" for r in ROLES for m in ("roc_auc", "average_precision", "brier", "ece")),
        "retention.average_precision",
        "gain.average_precision",
        "fidelity.agreement",
        "fidelity.alert_overlap",
        "fidelity.spearman",
        "fidelity.mean_abs_gap",
    ),
    "multiclass": (
        *(f"{r}.{m}" for r in ROLES for m in ("accuracy", "roc_auc", "log_loss", "ece")),
        "retention.roc_auc",
        "gain.roc_auc",
        "fidelity.agreement",
        "fidelity.mean_abs_gap",
        "fidelity.kl",
    ),
    "multilabel": (
        *(f"{r}.{m}" for r in ROLES for m in ("roc_auc", "average_precision")),
        "retention.roc_auc",
        "gain.roc_auc",
        "fidelity.roc_auc",
        "fidelity.agreement",
        "fidelity.mean_abs_gap",
    ),
    "regression": (
        *(f"{r}.{m}" for r in ROLES for m in ("rmse", "mae", "r2", "spearman")),
        "retention.rmse",
        "gain.rmse",
        "fidelity.r2",
        "fidelity.spearman",
        "fidelity.mae",
    ),
}
TASK_TYPE_ARTIFACTS = {
    "binary": ("reference/score_histogram.json", "plots/roc_pr.png", "plots/reliability.png", "plots/fidelity_scatter.png"),
    "regression": ("plots/fidelity_scatter.png",),
}


def _mixed(table: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A mixed panel's entries: the regression profile's and the multilabel one's, as its
    regression and binary outputs are judged by those metrics."""
    return tuple(dict.fromkeys(name for kind in MIXED_KINDS.values() for name in table.get(kind, ())))


TASK_TYPE_METRICS["mixed"] = _mixed(TASK_TYPE_METRICS)
TASK_TYPE_ARTIFACTS["mixed"] = _mixed(TASK_TYPE_ARTIFACTS)


@hookimpl
def stillroom_compliance_profiles() -> Iterable[ComplianceProfile]:
    """``core``: what every run logs; ``core.<task type>``: what the task type adds."""
    yield ComplianceProfile(
        name="core",
        metrics=(*EFFICIENCY_METRICS, "gate.passed"),
        params=("recipe.temperature", "recipe.alpha", "student.name", "run.seed", "transfer.rows", "teacher.source"),
        tags=(
            "stillroom.task",
            "stillroom.task_type",
            "stillroom.reference",
            "stillroom.gate",
            "stillroom.plugins",
            "stillroom.version",
        ),
        artifacts=CORE_ARTIFACTS,
        description="What every stillroom distillation run logs, whatever the vertical.",
    )
    for kind, names in TASK_TYPE_METRICS.items():
        yield ComplianceProfile(
            name=f"core.{kind}",
            metrics=names,
            artifacts=TASK_TYPE_ARTIFACTS.get(kind, ()),
            description=f"What every {kind} distillation run logs: quality with CIs, retention, gain, fidelity.",
        )


@hookimpl
def stillroom_evaluators() -> Iterable[EvaluatorSpec]:
    yield EvaluatorSpec(
        name="core.generic",
        task="*",
        evaluate=evaluate_generic,
        description="the task type's metrics with bootstrap CIs, retention, gain, fidelity (+ calibration, plots for binary)",
    )


@hookimpl(trylast=True)
def stillroom_make_teacher(spec: Any, task: TaskSpec, bundle: DataBundle, seed: int) -> Any:
    if spec.uri:
        from .teachers import load_teacher_uri

        return load_teacher_uri(spec.uri)
    from .plugins import get_plugin_manager

    entry = get_plugin_manager().registry.get("teacher", spec.name)
    return entry.build(dict(spec.params), bundle, seed)


@hookimpl(trylast=True)
def stillroom_make_student(spec: Any, task: TaskSpec, seed: int) -> Any:
    from .plugins import get_plugin_manager

    entry = get_plugin_manager().registry.get("student", spec.name)
    return entry.build(dict(spec.params), seed)


@hookimpl
def stillroom_transfer_points(bundle: DataBundle, config: Any, rng: np.random.Generator) -> pd.DataFrame | None:
    """The unlabelled pool and MUNGE synthetic points, as the config asks."""
    frames = []
    transfer = config.transfer
    if transfer.unlabelled_pool and bundle.unlabelled is not None and len(bundle.unlabelled):
        frames.append(bundle.X(bundle.unlabelled).assign(__origin__="pool"))
    if transfer.munge.enabled:
        from .munge import munge

        seed_rows = bundle.X(bundle.train)
        size = int(round(transfer.munge.multiplier * len(seed_rows)))
        synthetic = munge(
            seed_rows, size=size, p=transfer.munge.p, s=transfer.munge.s, rng=rng, max_seed_rows=transfer.munge.max_seed_rows
        )
        frames.append(synthetic.assign(__origin__="munge"))
    return pd.concat(frames, ignore_index=True) if frames else None
