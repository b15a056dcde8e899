"""The release gate: the config's rules evaluated against the run's metrics.

A gate result is what the registry tags a model version with and what ``stillroom promote``
checks, so its reasons are written for a reviewer: each rule with the observed value, or why
there is none (missing, or not estimable on this data: "not estimable: 2 teacher alerts < 30").
Whether a rule can apply to the data at all is checked before any work
(:mod:`stillroom.distillation.applicability`); here every rule has a value or a reason.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..contract.config import GateConfig
from ..contract.rules import parse_rule
from ..metrics.power import POWER, NonInferiorityPower

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class RuleResult:
    rule: str
    metric: str
    observed: float | None
    passed: bool
    kind: str = "quality"
    note: str | None = None  # why there is no verdict on a value: not estimable, missing
    threshold: float | None = None  # what the observed value is compared with (a noninferior rule's: -margin)
    inconclusive: bool = False  # a noninferior rule failed only because its interval is too wide to tell

    @property
    def note_is_not_estimable(self) -> bool:
        return (self.note or "").startswith("not estimable")

    def reason(self) -> str:
        parts = [self.note] if self.note else []
        if self.observed is not None:
            parts.append(f"observed {self.observed:.6g}")
        elif not (self.note or "").startswith("not estimable"):
            parts.append("observed missing")
        return f"{'PASS' if self.passed else 'FAIL'} {self.rule} ({'; '.join(parts)})"


@dataclass(frozen=True)
class GateResult:
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def undecided(self) -> bool:
        """Failed only on rules these rows could not decide (inconclusive or not estimable).

        Why: the gate still fails (nothing was shown, so nothing may ship on it), but "failed"
        alone reads as "the student is worse"; a reviewer must see that the evidence, not the
        student, fell short, and that more rows (the reasons say how many) would settle it."""
        failed = [r for r in self.rules if not r.passed]
        return bool(failed) and all(r.inconclusive or r.note_is_not_estimable for r in failed)

    def verdict(self) -> str:
        """The status with what it rests on, for the console, the card and the report."""
        if self.undecided:
            return (
                "failed, undecided: every failing rule is inconclusive or not estimable on these rows; nothing shows "
                "the student worse, nor that it is not (the rules say what would decide them)"
            )
        return self.status

    def reasons(self) -> list[str]:
        return [r.reason() for r in self.rules]

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "undecided": self.undecided, "rules": [r.__dict__ for r in self.rules]}


def evaluate_gate(
    gate: GateConfig | list[str],
    metrics: Mapping[str, float],
    not_estimable: Mapping[str, str] | None = None,
    *,
    level: float = 0.95,
    split: str = "test",
) -> GateResult:
    """Every rule against the metrics (interval bounds as ``<metric>.ci_low``/``.ci_high``).

    A missing or NaN metric fails its rule; so does a metric computed on too few events
    (``not_estimable``, by metric name, bounds included), with the reason instead of a verdict
    on its value: a number from 2 alerts says nothing either way. ``level`` is the intervals'
    (``evaluation.ci_level``) and ``split`` the rows they were computed on: an inconclusive
    reason states both, and what it would take to decide."""
    config = gate if isinstance(gate, GateConfig) else GateConfig(rules=list(gate))
    unestimable = dict(not_estimable or {})
    results = []
    for text in config.rules:
        parsed = parse_rule(text)
        rule = parsed.resolved(config.margin_for(parsed.compared))
        value = metrics.get(rule.metric)
        observed = None if value is None or math.isnan(value) else float(value)
        why = unestimable.get(rule.metric) or unestimable.get(rule.base_metric)
        if why is not None:
            note: str | None = f"not estimable: {why}"
        elif rule.noninferior:
            note = f"{rule.metric} >= -{rule.margin:g}"  # what the rule checks, beside the value
        else:
            note = None
        ok = why is None and observed is not None and rule.threshold is not None and OPS[rule.op](observed, rule.threshold)
        judged = rule.noninferior and not ok and why is None
        inconclusive = _too_wide(rule.metric, rule.margin, metrics, level, split) if judged else ""
        if inconclusive:
            note = f"{note}; {inconclusive}"
        results.append(
            RuleResult(rule.text, rule.metric, observed, bool(ok), rule.kind, note, rule.threshold, bool(inconclusive))
        )
    return GateResult(results)


def _too_wide(low_key: str, margin: float | None, metrics: Mapping[str, float], level: float, split: str) -> str:
    """Why a failing non-inferiority rule failed, when the data cannot tell: the interval of the
    gain holds 0 (an equal student fits the data) and is wider than the margin, so even a student
    exactly as good as its baseline would fail about half the time or more. A reviewer must tell
    "too few rows" from "worse student", and the user needs what would decide it: how many times
    the rows, or which margin (:class:`~stillroom.metrics.power.NonInferiorityPower`)."""
    high = metrics.get(low_key.removesuffix(".ci_low") + ".ci_high")
    low = metrics.get(low_key)
    if margin is None or high is None or low is None or math.isnan(high) or math.isnan(low):
        return ""
    half = (high - low) / 2
    if half <= margin or high < 0:  # narrow, or wholly below 0: the student is worse, not unjudged
        return ""
    power = NonInferiorityPower.from_interval(low, high, margin, level)
    factor, wider = power.rows_factor(), f"a margin of {power.resolvable_margin():.2g}"
    decide = (
        f"{POWER:.0%} would need about {factor:.1f}x as many {split} rows, or {wider}"
        if math.isfinite(factor)
        else f"no number of rows would raise that to {POWER:.0%}, only {wider} would"
    )
    return (
        f"inconclusive: the gain's {level:.0%} interval [{low:.3g}, {high:.3g}] holds 0 and is wider than the margin "
        f"(+/-{half:.3g} > {margin:g}); on these {split} rows a student exactly as good as its baseline passes about "
        f"{power.pass_probability_if_equal():.0%} of the time: {decide}"
    )
