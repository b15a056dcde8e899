"""Gate rules checked against the loaded data before any work.

A rule whose metric this data cannot produce would fail the run after the teacher trained
("observed missing", hours later). Right after the data loads, each rule is checked: the run's
reference must allow it (no baseline and no judged teacher when the teacher's outputs are the
reference), its interval must be computed (``evaluation.bootstrap > 0``), and some evaluator
must report its metric on this data (:attr:`~stillroom.contract.EvaluatorSpec.reports`). A rule
that cannot apply is a :class:`~stillroom.errors.ConfigError` naming the rule and what would
make it applicable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from ..contract.bundle import DataBundle
from ..contract.config import DistillConfig, GateConfig
from ..contract.rules import BOUNDS, Rule, expand_rules, parse_rule
from ..contract.specs import EvaluatorSpec
from ..errors import ConfigError
from ..tasks.judging import UNJUDGED_PREFIXES
from ..tasks.types import reported_metrics


def check_rules(rules: list[str], cfg: DistillConfig, bundle: DataBundle, evaluators: Iterable[EvaluatorSpec]) -> None:
    """Refuse, before the teacher trains, the first rule (placeholders written out:
    :func:`~stillroom.contract.rules.expand_rules`) this data cannot produce a value for."""
    evaluators = list(evaluators)
    claims = [None if e.reports is None else e.reports(bundle, cfg) for e in evaluators]
    declared = all(c is not None for c in claims)
    patterns: dict[str, str | None] = {}
    reasons: dict[str, str] = {}
    for claim in claims:
        for pattern, why in (claim or {}).items():
            if why is None:
                patterns[pattern] = None
            else:
                reasons.setdefault(pattern, why)
    for text in rules:
        problem = _problem(parse_rule(text), bundle, cfg, patterns, reasons, declared)
        if problem:
            raise ConfigError(f"gate rule {text.strip()!r} cannot apply to this data: {problem}")


def gate_config(cfg: DistillConfig, bundle: DataBundle) -> GateConfig:
    """The config's gate with its placeholders written out for this data's task type and outputs."""
    rules = expand_rules(cfg.gate.rules, bundle.task_type, bundle.output_types, list(bundle.output_names))
    return cfg.gate.model_copy(update={"rules": rules})


def check_gate(cfg: DistillConfig, bundle: DataBundle, evaluators: Iterable[EvaluatorSpec]) -> None:
    """The config's gate, written out for this data, checked against it (right after it loads)."""
    check_rules(gate_config(cfg, bundle).rules, cfg, bundle, evaluators)


def generic_reports(bundle: DataBundle, cfg: DistillConfig) -> dict[str, str | None]:
    """What the core's generic evaluator reports: the task type's metrics (its ``reports``)."""
    return dict.fromkeys(reported_metrics(bundle.task_type))


def _problem(
    rule: Rule,
    bundle: DataBundle,
    cfg: DistillConfig,
    reported: Mapping[str, str | None],
    unavailable: Mapping[str, str],
    declared: bool,
) -> str | None:
    """Why the rule's metric cannot be produced on this data, or ``None`` when it can."""
    name = rule.base_metric
    if bundle.reference == "teacher" and name.startswith(UNJUDGED_PREFIXES):
        needs = "the teacher judged against labels" if name.startswith(("teacher.", "retention.")) else "the no-teacher baseline"
        return (
            f"{name} needs {needs}, and this data has no labels (the teacher's outputs are the reference, so there is "
            "no baseline and the teacher is not judged); give the data labels, or drop the rule"
        )
    if (rule.noninferior or rule.metric.endswith(BOUNDS)) and cfg.evaluation.bootstrap == 0:
        return f"{rule.metric} is a bootstrap interval bound and evaluation.bootstrap is 0; set it > 0 (e.g. 200)"
    for pattern, why in unavailable.items():
        if fnmatchcase(name, pattern):  # a specific lack outweighs a broad claim
            return f"{name}: {why}"
    if any(fnmatchcase(name, p) for p in reported) or not declared:
        return None
    examples = ", ".join(p for p in reported if "*" not in p and p.startswith(("student.", "retention.")))
    return (
        f"no evaluator of a {bundle.task_type} {cfg.task} run reports {name!r}; it reports e.g. {examples}, "
        "gain.<metric>, fidelity.<metric>, efficiency.<metric> (see docs/plugins.md, 'Gate rules')"
    )
