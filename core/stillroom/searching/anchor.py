"""The default student as the anchor of a search's choice.

Why: the front and the tie-break rank point estimates on validation. Measured under the issue's
protocol (30 minutes, full teachers), the plain choice picked a smaller student in three of four
cells whose validation retention was within the tie tolerance of the best, and which was then
worse on test than the student ``stillroom distill`` gives by default (medical seed 0: -0.013
ROC-AUC, paired interval wholly below 0). A team that runs a search asks for "smaller and faster,
but not worse than what I had": so the default student (trial 0, the vertical's defaults) stays
the answer unless another feasible trial is shown no worse than it on validation, by the paired
comparison the gate's non-inferiority rule makes (both students' outputs on the same validation
rows, resampled together), and is no worse on the other objectives. Among the default and the
trials that pass, the usual tie-break decides.

Each trial logs its validation outputs (``predictions/validation.parquet`` in its child run); the
comparison reads them back, so a resumed search compares trials from before the interruption
too, and a reviewer can recompute every comparison from the record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..audit.predictions import role_values
from ..contract.config import AnchorSettings
from ..metrics import bootstrap_difference
from ..tasks.measures import MetricDef
from .choice import TrialView, oriented

QUALITY_PREFIXES = ("retention.", "student.")
"""Choose keys that name the student's quality in a metric the evaluation computes."""

Fetch = Callable[[TrialView], pd.DataFrame]
"""A trial's validation predictions (labels and the student's outputs)."""


@dataclass(frozen=True)
class Comparison:
    """One trial against the default student on validation."""

    trial: int
    difference: float  # trial - default in the metric, oriented: > 0 is better
    low: float  # the worse bound of its paired interval, oriented
    high: float
    relative_low: float  # ``low`` as a fraction of the default's value
    kept: bool
    why: str


def anchor_metric(order: list[str]) -> str | None:
    """The metric the first choose key judges the student by (``retention.roc_auc`` -> ``roc_auc``)."""
    first = order[0] if order else ""
    return next((first.removeprefix(p) for p in QUALITY_PREFIXES if first.startswith(p)), None)


def default_trial(feasible: list[TrialView]) -> TrialView | None:
    """Trial 0 (the vertical's defaults, enqueued first) when it completed and met the constraints."""
    return next((t for t in feasible if t.number == 0), None)


def compare(
    trial: TrialView,
    default: TrialView,
    metric: MetricDef,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    settings: AnchorSettings,
    objectives: dict[str, str],
    n_boot: int,
    seed: int,
) -> Comparison:
    """The paired interval of (trial - default) in ``metric``, then the other objectives."""
    mine, theirs = tables
    if not (mine["row"].equals(theirs["row"])):
        raise ValueError(f"trial {trial.number} and the default student were not judged on the same validation rows")
    y = role_values(theirs, "label")
    interval = bootstrap_difference(
        metric.fn, y, role_values(mine, "student"), role_values(theirs, "student"), n_boot=n_boot, seed=seed
    )
    sign = 1.0 if metric.higher_is_better else -1.0
    diff, low, high = sign * interval.point, *sorted((sign * interval.low, sign * interval.high))
    base = abs(float(metric.fn(y, role_values(theirs, "student"))))
    relative = low / base if base > 0 else -math.inf
    if not relative >= -settings.margin:
        why = (
            f"not shown non-inferior to the default on validation: {metric.name} {diff:+.4f} "
            f"[{low:+.4f}, {high:+.4f}], worse bound {relative:+.2%} of the default's beyond the margin {settings.margin:.0%}"
        )
        return Comparison(trial.number, diff, low, high, relative, False, why)
    worse = _worse_objectives(trial, default, objectives, settings.slack)
    why = (
        f"worse than the default on {', '.join(worse)}"
        if worse
        else (
            f"non-inferior to the default on validation ({metric.name} {diff:+.4f} [{low:+.4f}, {high:+.4f}]) "
            "and no worse on the other objectives"
        )
    )
    return Comparison(trial.number, diff, low, high, relative, not worse, why)


def _worse_objectives(trial: TrialView, default: TrialView, objectives: dict[str, str], slack: dict[str, float]) -> list[str]:
    """The objectives beyond the first on which ``trial`` is worse than the default by more than their slack."""
    worse = []
    for metric, direction in list(objectives.items())[1:]:
        mine, theirs = oriented(trial, metric, direction), oriented(default, metric, direction)
        if mine < theirs - slack.get(metric, 0.0) * abs(theirs):
            worse.append(f"{metric} ({trial.metrics.get(metric):.4g} vs {default.metrics.get(metric):.4g})")
    return worse


def candidates(
    front: list[TrialView],
    default: TrialView,
    metric: MetricDef,
    fetch: Fetch,
    reference: pd.DataFrame,
    settings: AnchorSettings,
    objectives: dict[str, str],
    n_boot: int,
    seed: int,
) -> tuple[list[TrialView], list[Comparison]]:
    """The default and every front trial shown no worse than it (``reference``: the default's
    validation predictions); the comparisons for the record."""
    compared = [
        _compare_or_say(t, default, metric, fetch, reference, settings, objectives, n_boot, seed)
        for t in front
        if t.number != default.number
    ]
    kept = {c.trial for c in compared if c.kept}
    return [default, *(t for t in front if t.number in kept)], compared


def _compare_or_say(
    trial: TrialView,
    default: TrialView,
    metric: MetricDef,
    fetch: Fetch,
    reference: pd.DataFrame,
    settings: AnchorSettings,
    objectives: dict[str, str],
    n_boot: int,
    seed: int,
) -> Comparison:
    """A trial whose validation outputs cannot be read (logged by an older version) is not kept."""
    try:
        table = fetch(trial)
    except Exception as exc:
        nan = math.nan
        return Comparison(trial.number, nan, nan, nan, nan, False, f"its validation predictions could not be read ({exc})")
    return compare(trial, default, metric, (table, reference), settings, objectives, n_boot, seed)


def rule_text(settings: AnchorSettings, metric: str) -> str:
    slack = ", ".join(f"{k} within {v:.0%}" for k, v in settings.slack.items())
    return (
        f"the default student (trial 0) unless a feasible trial of the front is non-inferior to it on validation "
        f"(paired {metric} interval, worse bound within {settings.margin:.0%} of the default's value) and no worse on "
        f"the other objectives{' (' + slack + ')' if slack else ''}; among the default and those trials"
    )


def as_record(compared: list[Comparison]) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(c).items()} for c in compared]
