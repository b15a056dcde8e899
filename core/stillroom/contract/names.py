"""Names shared by the core, the verticals and the audit trail: roles, tag keys, metric keys.

They are part of the plugin API and of the record: a reviewer's saved MLflow search
(``tags.stillroom.gate = 'passed'``), a dashboard on ``student.average_precision`` and a
vertical's compliance profile all depend on them, so they are written once, here.
"""

from __future__ import annotations

from ..tasks.kinds import ROLES

TAG_PREFIX = "stillroom."
ROLE_TAG = f"{TAG_PREFIX}role"
TASK_TAG = f"{TAG_PREFIX}task"
TASK_TYPE_TAG = f"{TAG_PREFIX}task_type"
REFERENCE_TAG = f"{TAG_PREFIX}reference"
GATE_TAG = f"{TAG_PREFIX}gate"
COMPLIANCE_TAG = f"{TAG_PREFIX}compliance"
COMPLIANCE_MISSING_TAG = f"{TAG_PREFIX}compliance_missing"
COMPLETE, INCOMPLETE = "complete", "incomplete"
"""Values of :data:`COMPLIANCE_TAG`."""

INPUT_FORMAT_TAG = f"{TAG_PREFIX}input_format"
INPUT_FORMAT_SETTINGS_TAG = f"{TAG_PREFIX}input_format.settings"
"""Run tags of a model trained from raw records: the input format that turns a raw batch into its
inputs, and that format's settings (JSON), read by ``stillroom score --raw``."""

INPUT_ALIASES = "input_aliases"
"""``model_config`` key of a model whose input columns may come under other names in a user's
file: ``{input: [alias, ...]}``. ``stillroom score`` takes the first alias present (any case) for
an input the file lacks (a molecules model's ``smiles`` from a ``Smiles`` column)."""

PROMOTION_EXPERIMENT = "stillroom-promotions"
SCORING_EXPERIMENT = "stillroom-scoring"


def metric_key(name: str) -> str:
    """``name`` made a valid MLflow metric key (alphanumerics, ``_ - . / `` and space)."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in name)


def output_metric_key(role: str, metric: str, output: str, n_outputs: int) -> str:
    """Where one output's value of a metric is kept: under the output's name when the model has
    several outputs (also the one value output of a mixed panel, so every endpoint of a panel
    is found by its name), else under the metric's own key (a model of one output is that output)."""
    return metric_key(f"{role}.{metric}.{output}") if n_outputs > 1 else f"{role}.{metric}"


__all__ = [
    "COMPLETE",
    "COMPLIANCE_MISSING_TAG",
    "COMPLIANCE_TAG",
    "GATE_TAG",
    "INPUT_ALIASES",
    "INPUT_FORMAT_SETTINGS_TAG",
    "INPUT_FORMAT_TAG",
    "INCOMPLETE",
    "PROMOTION_EXPERIMENT",
    "REFERENCE_TAG",
    "ROLES",
    "ROLE_TAG",
    "SCORING_EXPERIMENT",
    "TAG_PREFIX",
    "TASK_TAG",
    "TASK_TYPE_TAG",
    "metric_key",
    "output_metric_key",
]
