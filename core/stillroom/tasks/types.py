"""What each task type reports and what every run of it must log.

The metrics of the teacher / student / baseline table, the metrics whose retention and gain sum a
run up, the compliance profile ``core.<task type>`` (metrics and artifacts every run logs), and the
plain-words definitions a model card gives. Binary tasks are judged by ROC-AUC, AP, Brier and ECE
at an operating point (:mod:`stillroom.metrics`); the others by :data:`stillroom.tasks.measures.METRICS`;
a mixed panel by its regression and multilabel parts (:data:`~stillroom.tasks.measures.MIXED_KINDS`).
"""

from __future__ import annotations

from .kinds import BINARY, MIXED, MULTICLASS, MULTILABEL, REGRESSION, ROLES, has_class_labels
from .measures import METRICS, MIXED_KINDS

BINARY_METRICS = ("roc_auc", "average_precision", "brier", "ece")

TABLE_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: BINARY_METRICS,
    **{kind: tuple(m.name for m in defs) for kind, defs in METRICS.items()},
    MIXED: tuple(m.name for kind in MIXED_KINDS.values() for m in METRICS[kind]),
}
"""The metrics of the teacher / student / baseline table, per task type (card, console)."""

COMPLIANCE_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: (
        *(f"{r}.{m}" for r in ROLES for m in BINARY_METRICS),
        "retention.average_precision",
        "gain.average_precision",
        "fidelity.agreement",
        "fidelity.alert_overlap",
        "fidelity.spearman",
        "fidelity.mean_abs_gap",
    ),
    MULTICLASS: (
        *(f"{r}.{m}" for r in ROLES for m in ("accuracy", "roc_auc", "log_loss", "ece")),
        "retention.roc_auc",
        "gain.roc_auc",
        "fidelity.agreement",
        "fidelity.mean_abs_gap",
        "fidelity.kl",
    ),
    MULTILABEL: (
        *(f"{r}.{m}" for r in ROLES for m in ("roc_auc", "average_precision")),
        "retention.roc_auc",
        "gain.roc_auc",
        "fidelity.roc_auc",
        "fidelity.agreement",
        "fidelity.mean_abs_gap",
    ),
    REGRESSION: (
        *(f"{r}.{m}" for r in ROLES for m in ("rmse", "mae", "r2", "spearman")),
        "retention.rmse",
        "gain.rmse",
        "fidelity.r2",
        "fidelity.spearman",
        "fidelity.mae",
    ),
}
"""The metrics profile ``core.<task type>`` asks of every run: quality with CIs, retention, gain, fidelity."""

COMPLIANCE_ARTIFACTS: dict[str, tuple[str, ...]] = {
    BINARY: ("reference/score_histogram.json", "plots/roc_pr.png", "plots/reliability.png", "plots/fidelity_scatter.png"),
    REGRESSION: ("plots/fidelity_scatter.png",),
}
"""The artifacts profile ``core.<task type>`` asks of every run."""


def _mixed(table: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A mixed panel's entries: the regression profile's and the multilabel one's, as its
    regression and binary outputs are judged by those metrics."""
    return tuple(dict.fromkeys(name for kind in MIXED_KINDS.values() for name in table.get(kind, ())))


COMPLIANCE_METRICS[MIXED] = _mixed(COMPLIANCE_METRICS)
COMPLIANCE_ARTIFACTS[MIXED] = _mixed(COMPLIANCE_ARTIFACTS)

DEFINITIONS = {
    BINARY: "ROC-AUC, average precision, Brier, ECE, fidelity (alert overlap, agreement, Spearman, gaps)",
    MULTICLASS: "accuracy, macro one-vs-rest ROC-AUC, log loss, top-label ECE, fidelity (top-class agreement, gap, KL)",
    MULTILABEL: "per-label and macro ROC-AUC and average precision, fidelity (ROC-AUC against the teacher's calls)",
    REGRESSION: "RMSE, MAE, R2, Spearman per target and macro, fidelity (R2, Spearman, MAE to the teacher)",
}
DEFINITIONS[MIXED] = f"regression outputs: {DEFINITIONS[REGRESSION]}; binary outputs: {DEFINITIONS[MULTILABEL]}"
"""The metrics of each task type in words, for the model card."""


def decision_rule(task_type: str) -> str:
    """How a model's decision is read off its outputs when no threshold is fixed (all but binary)."""
    return "top class" if task_type == MULTICLASS else "outputs reported as they are"


def reports_per_output(task_type: str, n_outputs: int) -> bool:
    """Whether a reviewer must see which outputs each metric family covers: a task with several
    output columns, except multiclass (one label, one set of metrics)."""
    return not has_class_labels(task_type) and n_outputs >= 2


HEADLINE_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: ("roc_auc", "average_precision"),
    MULTICLASS: ("roc_auc", "accuracy"),
    MULTILABEL: ("roc_auc", "average_precision"),
    REGRESSION: ("rmse", "r2"),
    MIXED: ("rmse", "r2", "roc_auc", "average_precision"),
}
"""The metrics a default gate's retention and non-inferiority rules are written on, per task type
(for several outputs, the macro mean and, through per-output rules, each output)."""

FIDELITY_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: ("alert_overlap",),
    MULTICLASS: ("agreement",),
    MULTILABEL: ("roc_auc",),
    REGRESSION: ("r2",),
    MIXED: ("r2", "roc_auc"),
}
"""The fidelity a default gate's rule is written on, per task type: at the operating point for a
binary task (the teacher's alerts the student raises too), the top class for multiclass, ROC-AUC
against the teacher's calls for yes/no outputs, R2 against the teacher's values for regression."""

_FIDELITY: dict[str, tuple[str, ...]] = {
    BINARY: ("agreement", "alert_overlap", "spearman", "mean_abs_gap", "max_abs_gap"),
    MULTICLASS: ("agreement", "mean_abs_gap", "kl"),
    MULTILABEL: ("roc_auc", "agreement", "mean_abs_gap"),
    REGRESSION: ("r2", "spearman", "mae"),
}
_FIDELITY[MIXED] = _FIDELITY[REGRESSION] + _FIDELITY[MULTILABEL]


def reported_metrics(task_type: str) -> list[str]:
    """Glob patterns of the metric names the core's evaluation reports for a task type (before
    any vertical adds its own): each role's table metrics (per output too, and their CI bounds),
    retention and gain of each, fidelity and baseline fidelity, efficiency, thresholds."""
    patterns = [f"{role}.{m}{tail}" for role in ROLES for m in TABLE_METRICS[task_type] for tail in ("", ".*")]
    compared = HEADLINE_METRICS[BINARY] if task_type == BINARY else TABLE_METRICS[task_type]  # binary: ROC-AUC and AP only
    patterns += [f"{prefix}.{m}{tail}" for prefix in ("retention", "gain") for m in compared for tail in ("", ".*")]
    patterns += [f"{prefix}.{m}" for prefix in ("fidelity", "baseline_fidelity") for m in _FIDELITY[task_type]]
    return [*patterns, "efficiency.*", "threshold.*"]
