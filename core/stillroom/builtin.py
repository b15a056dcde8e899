"""The core's own hook implementations: generic evaluation, the core compliance profiles,
teachers from URIs/files, students and teachers from the registry, and the transfer set's
unlabelled pool and MUNGE points.

They are ``trylast`` where a vertical may want to take over (model building). The plugin is an
object bound to the manager that registers it, so a hook that needs the registry reads that
manager's, never a process-wide one: two managers in one process (a test, a notebook that loads
an extra vertical) each see their own plugins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .contract import hookimpl
from .contract.bundle import DataBundle
from .contract.names import ROLES
from .contract.specs import ComplianceProfile, EvaluatorSpec, TaskSpec
from .distillation.applicability import generic_reports
from .distillation.evaluation import evaluate_generic
from .distillation.munge import munge
from .distillation.teachers import load_teacher_uri
from .plugins import StillroomPluginManager
from .tasks.types import COMPLIANCE_ARTIFACTS, COMPLIANCE_METRICS

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
    "predictions/test.parquet",  # what every test figure is computed from (audit/predictions.py)
)


class CorePlugin:
    """The core's hook implementations, bound to the plugin manager that registers them."""

    def __init__(self, pm: StillroomPluginManager) -> None:
        self.pm = pm

    @hookimpl
    def stillroom_compliance_profiles(self) -> Iterable[ComplianceProfile]:
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
        for kind, names in COMPLIANCE_METRICS.items():
            yield ComplianceProfile(
                name=f"core.{kind}",
                metrics=names,
                artifacts=COMPLIANCE_ARTIFACTS.get(kind, ()),
                description=f"What every {kind} distillation run logs: quality with CIs, retention, gain, fidelity.",
            )

    @hookimpl
    def stillroom_evaluators(self) -> Iterable[EvaluatorSpec]:
        yield EvaluatorSpec(
            name="core.generic",
            task="*",
            evaluate=evaluate_generic,
            description="the task type's metrics with bootstrap CIs, retention, gain, fidelity (+ calibration, plots for binary)",
            reports=generic_reports,
        )

    @hookimpl(trylast=True)
    def stillroom_make_teacher(self, spec: Any, task: TaskSpec, bundle: DataBundle, seed: int) -> Any:
        if spec.uri:
            return load_teacher_uri(spec.uri)
        entry = self.pm.registry.get("teacher", spec.name)
        return entry.build(dict(spec.params), bundle, seed)

    @hookimpl(trylast=True)
    def stillroom_make_student(self, spec: Any, task: TaskSpec, seed: int) -> Any:
        entry = self.pm.registry.get("student", spec.name)
        return entry.build(dict(spec.params), seed)

    @hookimpl
    def stillroom_transfer_points(self, bundle: DataBundle, config: Any, rng: np.random.Generator) -> pd.DataFrame | None:
        """The unlabelled pool and MUNGE synthetic points, as the config asks."""
        frames = []
        transfer = config.transfer
        if transfer.unlabelled_pool and bundle.unlabelled is not None and len(bundle.unlabelled):
            frames.append(bundle.X(bundle.unlabelled).assign(__origin__="pool"))
        if transfer.munge.enabled:
            seed_rows = bundle.X(bundle.train)
            size = int(round(transfer.munge.multiplier * len(seed_rows)))
            synthetic = munge(
                seed_rows, size=size, p=transfer.munge.p, s=transfer.munge.s, rng=rng, max_seed_rows=transfer.munge.max_seed_rows
            )
            frames.append(synthetic.assign(__origin__="munge"))
        return pd.concat(frames, ignore_index=True) if frames else None
