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


CORE_OPERATING_POINT = "evaluation.operating_point"
"""The name of the core's operating point (``evaluation.operating_point``) in the model card; an
evaluator whose metrics hold at the core's thresholds names it too and adds them there."""


@dataclass
class OperatingPointRecord:
    """An operating point an evaluator computed thresholded metrics at, for the model card.

    ``rule`` says how it was chosen (``sensitivity 0.9 on validation, then fixed``; ``the top
    0.5% of test rows``); ``thresholds`` gives each model's threshold where there is one;
    ``metrics`` names what was computed there, without the role (``sensitivity``, ``ppv``;
    ``fidelity.alert_overlap`` for a comparison with the teacher). A reviewer reads every
    thresholded figure next to the point it holds at, never another one.
    """

    name: str
    rule: str
    metrics: list[str]
    thresholds: dict[str, float] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    """What an evaluator contributes.

    ``metrics`` are flat MLflow keys (``student.average_precision``); ``intervals`` gives a
    (low, high) confidence interval for some of them; ``artifacts`` are files the evaluator
    wrote under the context's ``artifact_dir`` (paths relative to it); ``tables`` are small
    tables for the model card; ``operating_points`` say where each thresholded metric was
    computed (two evaluators naming the same point add their metrics to it). ``not_estimable``
    names metrics computed on fewer events than ``evaluation.min_events`` (positives, alerts at
    the operating point) with why, e.g. ``{"fidelity.alert_overlap": "2 teacher alerts < 30"}``:
    their values are logged, but a gate rule on them fails with that reason.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    operating_points: list[OperatingPointRecord] = field(default_factory=list)
    not_estimable: dict[str, str] = field(default_factory=dict)

    def update(self, other: EvaluationResult) -> None:
        """Merge another evaluator's result into this one."""
        self.metrics.update(other.metrics)
        self.intervals.update(other.intervals)
        self.not_estimable.update(other.not_estimable)
        self.artifacts.extend(a for a in other.artifacts if a not in self.artifacts)
        self.tables.update(other.tables)
        for point in other.operating_points:
            self.add_operating_point(point)

    def add_operating_point(self, point: OperatingPointRecord) -> None:
        """Record an operating point, or add its metrics to the one of the same name."""
        for known in self.operating_points:
            if known.name == point.name:
                known.rule = known.rule or point.rule
                known.metrics.extend(m for m in point.metrics if m not in known.metrics)
                known.thresholds.update(point.thresholds)
                return
        self.operating_points.append(OperatingPointRecord(point.name, point.rule, list(point.metrics), dict(point.thresholds)))

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
