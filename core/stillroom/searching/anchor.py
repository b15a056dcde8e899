"""The default student as the anchor of a search's choice.

Why: the front and the tie-break rank point estimates on validation. Measured under the issue's
protocol (30 minutes, full teachers), the plain choice picked a smaller student in three of four
cells whose validation retention was within the tie tolerance of the best, and which was then
worse on test than the student ``stillroom distill`` gives by default (medical seed 0: -0.013
ROC-AUC, paired interval wholly below 0). A team that runs a search asks for "smaller and faster,
but not worse than what I had": so the default student (trial 0, the vertical's defaults) stays
the answer unless another feasible trial is shown no worse than it on validation, by the paired
comparison the gate's non-inferiority rule makes (both students' outputs on the same validation
rows, resampled together, with the gate's non-inferiority margin), and is no worse on the other
objectives. Among the default and the
trials that pass, the usual tie-break decides.

A validation set on which the default is already within the margin of the metric's best value
(ROC-AUC 0.997 with a margin of 0.01) cannot show a trial no worse: the margin admits a trial
several times as far from the best, and differences there say nothing of the test split (medical,
seed 0: both students at 0.997 on validation, the chosen one 0.014 lower on test, paired interval
wholly below 0). There a trial replaces the default only when it is shown better (its whole
interval above 0), and the record says that validation was saturated.

A default that misses a constraint on validation only as inconclusive (a non-inferiority
interval wider than its margin: the split cannot tell) stays the anchor; one shown to break a
constraint does not, and the plain choice applies (:func:`default_trial`).

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
from ..metrics import bootstrap_difference
from ..tasks.measures import MetricDef
from .choice import Constraints, TrialView, check, oriented

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
    kept: bool
    why: str


def anchor_metric(order: list[str]) -> str | None:
    """The metric the first choose key judges the student by (``retention.roc_auc`` -> ``roc_auc``)."""
    first = order[0] if order else ""
    return next((first.removeprefix(p) for p in QUALITY_PREFIXES if first.startswith(p)), None)


@dataclass(frozen=True)
class DefaultCheck:
    """Trial 0 as the anchor (``trial``) with the constraints it missed on validation only as
    inconclusive, or why it cannot be the anchor (``refused``: which constraints it was shown to
    break, or that it did not complete), so the record says what happened, not a choice of two."""

    trial: TrialView | None
    inconclusive: tuple[str, ...] = ()
    refused: str | None = None


def default_trial(trials: list[TrialView], rules: Constraints) -> DefaultCheck:
    """Trial 0 (the vertical's defaults, enqueued first) when it completed and no constraint is
    shown broken on validation, with the constraints it missed only as inconclusive (their reasons).

    Why inconclusive ones do not disqualify it: the default is what ``stillroom distill`` gives
    without a search, and a non-inferiority rule whose interval is wider than its margin says the
    validation split is too small to tell, not that the student is worse. Excluding the default
    on that ground handed the choice to whichever trial's interval happened to come out narrow
    (fraud, seed 1: the default failed ``noninferior(roc_auc)`` on validation as inconclusive, the
    plain choice took a slower, larger trial, and that one failed the test gate the default
    passed). Other trials still replace the default only when feasible and shown no worse."""
    default = next((t for t in trials if t.number == 0), None)
    if default is None:
        return DefaultCheck(None, refused="the default student (trial 0) was not run")
    if default.state != "complete":
        return DefaultCheck(None, refused=f"the default student (trial 0) did not complete ({default.state})")
    missed = [r for r in check(rules, default).rules if not r.passed]
    broken = [r.reason() for r in missed if not r.inconclusive]
    if broken:
        return DefaultCheck(None, refused="the default student (trial 0) was shown to break on validation: " + "; ".join(broken))
    return DefaultCheck(default, tuple(r.reason() for r in missed))


def saturation(metric: MetricDef, margin: float, reference: pd.DataFrame) -> str | None:
    """Why validation cannot show a trial no worse than the default (``reference``: its
    validation predictions), or None: the default is within the margin of the metric's best value."""
    best = metric.best
    if best is None:
        return None
    value = float(metric.fn(role_values(reference, "label"), role_values(reference, "student")))
    room = abs(best - value)
    if not math.isfinite(value) or room > margin:
        return None
    return (
        f"validation is saturated: the default student scores {metric.name} {value:.4f} there, within the "
        f"margin {margin:g} of its best value {best:g}, so only a trial shown better replaces it (a harder "
        f"validation split, or search.anchor.margin below {room:.2g}, would tell the students apart)"
    )


@dataclass(frozen=True)
class Judge:
    """How a trial is compared with the default: the metric, the loss tolerated in its units
    (``margin``), the slack on the other objectives, the paired bootstrap, and whether the
    default's validation set is saturated (:func:`saturation`, judged once for every trial)."""

    metric: MetricDef
    margin: float
    slack: dict[str, float]
    objectives: dict[str, str]
    n_boot: int = 1000
    seed: int = 0
    saturated: str | None = None

    def compare(self, trial: TrialView, default: TrialView, mine: pd.DataFrame, theirs: pd.DataFrame) -> Comparison:
        """The paired interval of (trial - default) against the margin, then the other objectives."""
        if not mine["row"].equals(theirs["row"]):
            raise ValueError(f"trial {trial.number} and the default student were not judged on the same validation rows")
        y = role_values(theirs, "label")
        interval = bootstrap_difference(
            self.metric.fn, y, role_values(mine, "student"), role_values(theirs, "student"), n_boot=self.n_boot, seed=self.seed
        )
        sign = 1.0 if self.metric.higher_is_better else -1.0
        diff, (low, high) = sign * interval.point, sorted((sign * interval.low, sign * interval.high))
        shown = f"{self.metric.name} {diff:+.4f} [{low:+.4f}, {high:+.4f}]"
        if not low >= -self.margin:
            why = f"not shown non-inferior to the default on validation: {shown}, worse bound beyond the margin -{self.margin:g}"
            return Comparison(trial.number, diff, low, high, False, why)
        if not low > 0 and self.saturated:
            why = f"not shown better than the default on a saturated validation set: {shown}"
            return Comparison(trial.number, diff, low, high, False, why)
        worse = self._worse_objectives(trial, default)
        if worse:
            return Comparison(trial.number, diff, low, high, False, f"worse than the default on {', '.join(worse)}")
        why = f"non-inferior to the default on validation ({shown}) and no worse on the other objectives"
        return Comparison(trial.number, diff, low, high, True, why)

    def _worse_objectives(self, trial: TrialView, default: TrialView) -> list[str]:
        """The objectives beyond the first on which ``trial`` is worse than the default by more than their slack."""
        worse = []
        for metric, direction in list(self.objectives.items())[1:]:
            mine, theirs = oriented(trial, metric, direction), oriented(default, metric, direction)
            if mine < theirs - self.slack.get(metric, 0.0) * abs(theirs):
                worse.append(f"{metric} ({trial.metrics.get(metric):.4g} vs {default.metrics.get(metric):.4g})")
        return worse

    def rule(self) -> str:
        slack = ", ".join(f"{k} within {v:.0%}" for k, v in self.slack.items())
        return (
            "the default student (trial 0) unless a feasible trial of the front is non-inferior to it on validation "
            f"(paired {self.metric.name} interval, worse bound within the margin {self.margin:g}) and no worse on "
            f"the other objectives{' (' + slack + ')' if slack else ''}; among the default and those trials"
        )


def candidates(
    front: list[TrialView], default: TrialView, reference: pd.DataFrame, fetch: Fetch, judge: Judge
) -> tuple[list[TrialView], list[Comparison]]:
    """The default and every front trial shown no worse than it (``reference``: the default's
    validation predictions); the comparisons for the record."""
    compared = [_compare_or_say(t, default, reference, fetch, judge) for t in front if t.number != default.number]
    kept = {c.trial for c in compared if c.kept}
    return [default, *(t for t in front if t.number in kept)], compared


def _compare_or_say(trial: TrialView, default: TrialView, reference: pd.DataFrame, fetch: Fetch, judge: Judge) -> Comparison:
    """A trial whose validation outputs cannot be read (logged by an older version) is not kept."""
    try:
        table = fetch(trial)
    except Exception as exc:
        nan = math.nan
        return Comparison(trial.number, nan, nan, nan, False, f"its validation predictions could not be read ({exc})")
    return judge.compare(trial, default, table, reference)


def as_record(compared: list[Comparison]) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(c).items()} for c in compared]
