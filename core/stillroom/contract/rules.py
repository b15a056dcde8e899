"""The grammar of gate rules: what a ``gate.rules`` entry of a config may say.

Two forms, both one line a reviewer reads as it is:

* ``METRIC OP NUMBER``: a logged metric against a threshold, e.g. ``retention.roc_auc >= 0.95``,
  ``fidelity.alert_overlap >= 0.8``. ``METRIC`` may be a confidence bound of a metric with an
  interval (``gain.roc_auc.ci_low >= -0.01``: the lower bound of the paired bootstrap CI).
* ``noninferior(METRIC)`` or ``noninferior(METRIC, MARGIN)``: the student is not worse than the
  no-teacher baseline by more than ``MARGIN`` on ``METRIC``: the lower bound of the paired
  bootstrap CI of the gain (student - baseline, oriented so larger is better, see
  :mod:`stillroom.distillation.evaluation`) is at least ``-MARGIN``. Without a margin the
  config's ``gate.non_inferiority_margin`` applies. It is ``gain.METRIC.ci_low >= -MARGIN``
  under a name that says what it asks.

Every rule has a *kind* (:data:`KINDS`): what it judges the student against. A vertical's
default gate has one of each of retention, non-inferiority, fidelity and efficiency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..tasks.measures import output_groups
from ..tasks.types import FIDELITY_METRICS, HEADLINE_METRICS, reports_per_output
from .names import output_metric_key

# A metric name is what :func:`stillroom.contract.names.metric_key` keeps: word characters,
# ``. / -`` and spaces (an output named from a user's column, e.g. SIDER's "Hepatobiliary
# disorders", gives ``retention.roc_auc.Hepatobiliary disorders``).
_METRIC = r"([\w./{}-](?:[\w./{} -]*[\w./{}-])?)"
COMPARISON = re.compile(rf"^\s*{_METRIC}\s*(>=|<=|>|<|==)\s*(-?[\d.eE+-]+)\s*$")
NONINFERIOR = re.compile(rf"^\s*noninferior\(\s*{_METRIC}\s*(?:,\s*([\d.eE+-]+)\s*)?\)\s*$")
PLACEHOLDERS = ("{headline}", "{fidelity}")
BOUNDS = (".ci_low", ".ci_high")

KINDS = {
    "retention": "the teacher: the student keeps this share of its quality",
    "non-inferiority": "the no-teacher baseline: the student is not worse beyond a margin (paired CI)",
    "fidelity": "the teacher's outputs: the student follows it (at the operating point)",
    "efficiency": "the teacher's cost: the student is faster or smaller",
    "quality": "the labels: the student's own score",
}
"""What each kind of rule judges the student against."""

_PREFIX_KINDS = {"retention": "retention", "fidelity": "fidelity", "efficiency": "efficiency", "gain": "non-inferiority"}


@dataclass(frozen=True)
class Rule:
    """One parsed rule: ``metric`` is the name looked up among the run's metrics (for
    ``noninferior`` the gain's lower bound); ``margin`` is set only by ``noninferior``, and is
    ``None`` there when the rule names none (the config's default applies)."""

    text: str
    metric: str
    op: str
    threshold: float | None
    noninferior: bool = False
    margin: float | None = None

    @property
    def base_metric(self) -> str:
        """The metric without a confidence-bound suffix (``gain.roc_auc`` for ``gain.roc_auc.ci_low``)."""
        for suffix in BOUNDS:
            if self.metric.endswith(suffix):
                return self.metric[: -len(suffix)]
        return self.metric

    @property
    def kind(self) -> str:
        """``retention``, ``non-inferiority``, ``fidelity``, ``efficiency`` or ``quality`` (see :data:`KINDS`)."""
        if self.noninferior:
            return "non-inferiority"
        return _PREFIX_KINDS.get(self.metric.split(".", 1)[0], "quality")

    @property
    def compared(self) -> str:
        """The metric a ``noninferior`` rule compares (``roc_auc`` for ``gain.roc_auc.ci_low``)."""
        return self.base_metric.removeprefix("gain.")

    def resolved(self, default_margin: float) -> Rule:
        """A ``noninferior`` rule with its margin and threshold filled in from the config's default."""
        if not self.noninferior or self.threshold is not None:
            return self
        return Rule(self.text, self.metric, ">=", -default_margin, True, default_margin)


def parse_rule(text: str) -> Rule:
    """The rule a config line says, or a ``ValueError`` showing both accepted forms."""
    unknown = set(re.findall(r"{[^}]*}", text)) - set(PLACEHOLDERS)
    if unknown:
        raise ValueError(f"gate rule {text!r}: unknown placeholder {sorted(unknown)[0]}; use {' or '.join(PLACEHOLDERS)}")
    match = NONINFERIOR.match(text)
    if match:
        metric, margin = match.group(1), match.group(2)
        value = None if margin is None else float(margin)
        if value is not None and value < 0:
            raise ValueError(f"gate rule {text!r}: the margin is a tolerated loss, so it cannot be negative")
        return Rule(text.strip(), f"gain.{metric}.ci_low", ">=", None if value is None else -value, True, value)
    match = COMPARISON.match(text)
    if match:
        try:
            threshold = float(match.group(3))
        except ValueError:
            threshold = None
        if threshold is not None:
            return Rule(text.strip(), match.group(1), match.group(2), threshold)
    raise ValueError(
        f"gate rule {text!r} is not of the form 'metric >= number' (e.g. 'retention.roc_auc >= 0.95') "
        "or 'noninferior(metric)' / 'noninferior(metric, margin)'"
    )


def expand_rules(rules: list[str], task_type: str, output_types: list[str] | None, output_names: list[str]) -> list[str]:
    """Rules with their placeholders written out for a task type, one rule per metric:

    * ``{headline}``: each headline metric of the task type (binary: ``roc_auc`` and
      ``average_precision``; regression: ``rmse`` and ``r2`` ...; :data:`HEADLINE_METRICS`), the
      macro mean and, for several outputs, each output (``rmse.logS``);
    * ``{fidelity}``: the task type's fidelity metric (:data:`FIDELITY_METRICS`).

    So one default gate judges a binary endpoint and a regression panel alike, each by its own
    metrics, and a multi-output model on every output, not only the mean."""
    out: list[str] = []
    for text in rules:
        if "{headline}" in text:
            out += [text.replace("{headline}", m) for m in headline_names(task_type, output_types, output_names)]
        elif "{fidelity}" in text:
            out += [text.replace("{fidelity}", m) for m in FIDELITY_METRICS[task_type]]
        else:
            out.append(text)
    return list(dict.fromkeys(out))


def headline_names(task_type: str, output_types: list[str] | None, output_names: list[str]) -> list[str]:
    """The headline metrics of a task (macro), then per output where the model has several."""
    names = list(HEADLINE_METRICS[task_type])
    if not reports_per_output(task_type, len(output_names)):
        return names
    for group in output_groups(task_type, output_types):
        for metric in HEADLINE_METRICS[group.kind]:
            names += [
                output_metric_key("", metric, output, len(output_names)).lstrip(".") for output in group.names(output_names)
            ]
    return names
