"""The release gate: thresholds from the config evaluated against the run's metrics.

A gate result is what the registry tags a model version with and what ``stillroom promote``
checks, so its reasons are written for a reviewer: each rule with the observed value.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from ..contract.config import GATE_RULE

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class RuleResult:
    rule: str
    metric: str
    observed: float | None
    passed: bool

    def reason(self) -> str:
        seen = "missing" if self.observed is None else f"{self.observed:.6g}"
        return f"{'PASS' if self.passed else 'FAIL'} {self.rule} (observed {seen})"


@dataclass(frozen=True)
class GateResult:
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    def reasons(self) -> list[str]:
        return [r.reason() for r in self.rules]

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "rules": [r.__dict__ for r in self.rules]}


def evaluate_gate(rules: list[str], metrics: dict[str, float]) -> GateResult:
    """Every rule against the metrics; a missing or NaN metric fails its rule."""
    results = []
    for rule in rules:
        match = GATE_RULE.match(rule)
        if match is None:  # validated in config already; keep the gate total anyway
            results.append(RuleResult(rule, rule, None, False))
            continue
        name, op, threshold = match.group(1), match.group(2), float(match.group(3))
        value = metrics.get(name)
        ok = value is not None and not math.isnan(value) and OPS[op](value, threshold)
        results.append(RuleResult(rule.strip(), name, None if value is None else float(value), bool(ok)))
    return GateResult(results)
