"""The choice among trials: constraints on validation, the Pareto front, the tie-break rule,
and, when no trial is feasible, the one that came closest (named in the error)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..contract.config import GateConfig
from ..distillation.gate import GateResult, RuleResult, evaluate_gate

Constraints = GateConfig | list[str]
"""The rules a trial must meet on validation: a :class:`GateConfig`, so that ``noninferior``
constraints take the gate's configured margins (a bare list takes the default margin)."""


@dataclass(frozen=True)
class TrialView:
    """One trial as the choice sees it: its state, values, validation metrics, child run."""

    number: int
    state: str  # complete | pruned | failed
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    note: str = ""
    not_estimable: dict[str, str] = field(default_factory=dict)  # metric -> why (too few events)
    ci_level: float = 0.95  # its intervals' level (evaluation.ci_level)


def check(rules: Constraints, trial: TrialView) -> GateResult:
    """The constraints against the trial's validation metrics, as the trial itself judged them
    (the same margins, the same metrics not estimable on too few events)."""
    return evaluate_gate(rules, trial.metrics, trial.not_estimable, level=trial.ci_level, split="validation")


def feasible(trials: list[TrialView], rules: Constraints) -> list[TrialView]:
    return [t for t in trials if t.state == "complete" and check(rules, t).passed]


def dominates(a: TrialView, b: TrialView, objectives: dict[str, str]) -> bool:
    """``a`` is no worse than ``b`` on every objective and better on one."""
    better = False
    for metric, direction in objectives.items():
        x, y = oriented(a, metric, direction), oriented(b, metric, direction)
        if x < y:
            return False
        better = better or x > y
    return better


def pareto_front(trials: list[TrialView], objectives: dict[str, str]) -> list[TrialView]:
    """The trials no other trial dominates, by trial number."""
    return [t for t in trials if not any(dominates(o, t, objectives) for o in trials if o is not t)]


def tie_break_rule(
    objectives: dict[str, str],
    order: list[str],
    tolerance: dict[str, float] | None = None,
    among: str = "among the feasible trials on the Pareto front",
) -> str:
    """The rule :func:`choose` applies, in words; ``among``: the trials it chooses from."""
    keys, tolerance = order or list(objectives), tolerance or {}
    ranked = ", then ".join(
        f"{'highest' if objectives[k] == 'max' else 'lowest'} {k}"
        + (f" (within {tolerance[k]:g} of the best counts as a tie)" if tolerance.get(k) else "")
        for k in keys
    )
    return f"{among}: {ranked}; the earliest trial on a full tie"


def choose(
    front: list[TrialView], objectives: dict[str, str], order: list[str], tolerance: dict[str, float] | None = None
) -> TrialView:
    """Lexicographic over ``order`` (default: the objectives as listed), the earliest on a tie;
    on a key with a ``tolerance``, every trial within it of the best stays in for the next key.

    Why the tolerance: validation retention is measured with noise of about a point, so a plain
    lexicographic rule on it always ships the trial with the highest *measured* retention (the
    fraud search's 1.024 against 1.016) and never looks at size or speed: the opposite of "the
    smallest, fastest student that keeps the teacher"."""
    keys, tolerance = order or list(objectives), tolerance or {}
    candidates = sorted(front, key=lambda t: t.number)
    for k in keys:
        values = {t.number: oriented(t, k, objectives[k]) for t in candidates}
        best = max(values.values())
        candidates = [t for t in candidates if values[t.number] >= best - tolerance.get(k, 0.0)]
    return candidates[0]


def misses(trials: list[TrialView], rules: Constraints) -> dict[str, dict[str, int]]:
    """Per constraint, how many completed trials missed it on validation, and of those how many
    only as inconclusive (an interval too wide to tell) or as not estimable (too few events).

    Why: a search with few feasible trials must say which constraint cut them, and whether the
    students were worse or the validation split too small to show they were not; the counts
    come from the same judgement as the choice (:func:`check`), not from reason text."""
    out: dict[str, dict[str, int]] = {}
    for trial in trials:
        if trial.state != "complete":
            continue
        for rule in check(rules, trial).rules:
            if not rule.passed:
                counts = out.setdefault(rule.rule, {"missed": 0, "inconclusive": 0, "not_estimable": 0})
                counts["missed"] += 1
                counts["inconclusive"] += rule.inconclusive
                counts["not_estimable"] += rule.note_is_not_estimable
    return out


def closest(trials: list[TrialView], rules: Constraints) -> tuple[TrialView, GateResult] | None:
    """The completed trial missing the constraints by the least (relative shortfalls summed)."""
    done = [t for t in trials if t.state == "complete"]
    if not done:
        return None
    best = min(done, key=lambda t: (sum(shortfall(r) for r in check(rules, t).rules), t.number))
    return best, check(rules, best)


def shortfall(rule: RuleResult) -> float:
    """How far a rule is missed, relative to its threshold (0 when it holds, inf when unmeasured)."""
    if rule.passed:
        return 0.0
    if rule.observed is None or math.isnan(rule.observed) or rule.threshold is None or rule.note_is_not_estimable:
        return math.inf
    return abs(rule.observed - rule.threshold) / max(abs(rule.threshold), 1e-9)


def oriented(trial: TrialView, metric: str, direction: str) -> float:
    value = trial.metrics.get(metric, math.nan)
    if value is None or math.isnan(value):
        return -math.inf
    return value if direction == "max" else -value
