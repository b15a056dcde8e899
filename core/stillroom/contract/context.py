"""What hooks receive: the context of a run, of an evaluation, and of a scoring job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..tasks.judging import judged_roles
from .bundle import DataBundle
from .specs import TaskSpec


@dataclass
class RunContext:
    """A distillation run in progress (lifecycle hooks get it; they may add tags/params)."""

    task: TaskSpec
    config: Any
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationContext:
    """Held-out outputs of every model, for evaluators.

    ``predictions`` maps a model role (``teacher``, ``student``, ``baseline``) to its
    positive-class probabilities on ``frame``; ``thresholds`` maps each role to its operating
    threshold, chosen on validation (same operating point for every model) and then fixed.
    ``models`` maps the trained roles (``student``, ``baseline``) to the models themselves, for an
    evaluator that needs more than their outputs (a decision it makes that ships with the student).
    """

    task: TaskSpec
    bundle: DataBundle
    frame: pd.DataFrame
    y_true: np.ndarray
    predictions: dict[str, np.ndarray]
    thresholds: dict[str, float]
    config: Any
    seed: int = 0
    artifact_dir: Path | None = None
    valid_predictions: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)

    @property
    def judged(self) -> dict[str, np.ndarray]:
        """The predictions judged against ``y_true``: every role's, but not the teacher's when its
        own outputs are the reference (see :mod:`stillroom.tasks.judging`): it would be judged
        against itself."""
        return {role: self.predictions[role] for role in judged_roles(self.bundle.reference, self.predictions)}


@dataclass
class EvaluationResult:
    """What an evaluator contributes.

    ``metrics`` are flat MLflow keys (``student.average_precision``); ``intervals`` gives a
    (low, high) confidence interval for some of them; ``artifacts`` are files the evaluator
    wrote under the context's ``artifact_dir`` (paths relative to it); ``tables`` are small
    tables for the model card. ``not_estimable`` names metrics computed on fewer events than
    ``evaluation.min_events`` (positives, alerts at the operating point) with why, e.g.
    ``{"fidelity.alert_overlap": "2 teacher alerts < 30"}``: their values are logged, but a gate
    rule on them fails with that reason.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    not_estimable: dict[str, str] = field(default_factory=dict)

    def update(self, other: EvaluationResult) -> None:
        """Merge another evaluator's result into this one."""
        self.metrics.update(other.metrics)
        self.intervals.update(other.intervals)
        self.not_estimable.update(other.not_estimable)
        self.artifacts.extend(a for a in other.artifacts if a not in self.artifacts)
        self.tables.update(other.tables)

    def with_intervals(self) -> dict[str, float]:
        """The metrics and, for each interval, its bounds as ``<metric>.ci_low`` and ``.ci_high``:
        what is logged and what gate rules are evaluated against."""
        out = dict(self.metrics)
        for key, (low, high) in self.intervals.items():
            out[f"{key}.ci_low"], out[f"{key}.ci_high"] = low, high
        return out


@dataclass
class ScoringContext:
    """A batch scoring job (lifecycle hooks get it)."""

    model_uri: str
    model_version: str | None
    input_path: Path
    output_path: Path
    engine: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)
