"""The core's generic evaluation: how good, how faithful, how calibrated.

Teacher, student and baseline are evaluated on the same held-out rows, with bootstrap
intervals drawn on the same resamples so that their intervals are comparable. Every report
states "retained vs teacher" (student / teacher) and "gained vs no-teacher baseline"
(student - baseline, with a paired interval).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .. import metrics
from ..contract.context import CORE_OPERATING_POINT, EvaluationContext, EvaluationResult, OperatingPointRecord
from ..contract.names import output_metric_key
from ..metrics import plots
from ..tasks import kinds, measures

HEADLINE = {"roc_auc": roc_auc_score, "average_precision": average_precision_score}
"""The binary headline metrics, each with a bootstrap interval, retention and a paired gain."""


def operating_thresholds(kind: str, value: float, y_valid: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Each model's threshold at the same operating point, chosen on validation."""
    if kind == "threshold":
        return {role: float(value) for role in scores}
    if kind == "fpr":
        return {role: float(metrics.threshold_at_fpr(y_valid, s, value)) for role, s in scores.items()}
    return {role: float(metrics.threshold_for_alert_rate(s, value)) for role, s in scores.items()}


def evaluate_generic(ctx: EvaluationContext) -> EvaluationResult:
    """Headline metrics with CIs, retention and gain, fidelity, calibration, plots."""
    if kinds.has_scalar_output(ctx.bundle.task_type):
        return evaluate_binary(ctx)
    return evaluate_outputs(ctx)


def evaluate_outputs(ctx: EvaluationContext) -> EvaluationResult:
    """Multiclass, multilabel, regression and mixed: each output group's metrics with CIs (per
    output as well where the model has several), retention and gain oriented so larger is
    better, and fidelity of student and baseline to the teacher."""
    kind, output_types, result = ctx.bundle.task_type, ctx.bundle.output_types, EvaluationResult()
    groups = measures.output_groups(kind, output_types)
    for group in groups:
        for m in measures.METRICS[group.kind]:
            result.update(_metric_with_intervals(ctx, group, m))
    teacher = ctx.predictions["teacher"]
    for role, prefix in (("student", "fidelity"), ("baseline", "baseline_fidelity")):
        if role in ctx.predictions:
            fid = measures.fidelity(kind, teacher, ctx.predictions[role], output_types)
            result.metrics.update({f"{prefix}.{k}": v for k, v in fid.items()})
    regression = [g for g in groups if g.holds_values]
    if ctx.artifact_dir is not None and regression:
        result.artifacts.append(_regression_scatter(ctx, regression[0], ctx.artifact_dir))
    return result


def _metric_with_intervals(ctx: EvaluationContext, group: measures.OutputGroup, m: measures.MetricDef) -> EvaluationResult:
    """One metric on one output group: every role's value with its CI (and per output), retention,
    and gain with its paired CI."""
    result = EvaluationResult()
    n_boot, level = ctx.config.evaluation.bootstrap, ctx.config.evaluation.ci_level
    y, names = group.take(ctx.y_true), group.names(ctx.bundle.output_names)
    predictions = {role: group.take(p) for role, p in ctx.judged.items()}
    for role, (point, low, high) in metrics.bootstrap_many(
        m.fn, y, predictions, n_boot=n_boot, level=level, seed=ctx.seed
    ).items():
        result.metrics[f"{role}.{m.name}"] = point
        result.intervals[f"{role}.{m.name}"] = (low, high)
        if m.per_output is not None and ctx.bundle.n_outputs > 1:
            values = measures.per_column(m.per_output, y, predictions[role])
            for name, value in zip(names, values, strict=True):
                result.metrics[output_metric_key(role, m.name, name, ctx.bundle.n_outputs)] = value
    result.metrics.update(_retention_and_gain(m.name, result.metrics, m.higher_is_better))
    if "baseline" in predictions:
        better, worse = ("student", "baseline") if m.higher_is_better else ("baseline", "student")
        _, low, high = metrics.bootstrap_difference(
            m.fn, y, predictions[better], predictions[worse], n_boot=n_boot, level=level, seed=ctx.seed
        )
        result.intervals[f"gain.{m.name}"] = (low, high)
    return result


def _regression_scatter(ctx: EvaluationContext, group: measures.OutputGroup, root: Path) -> str:
    """Student against teacher on the group's first regression output."""
    j = 0 if group.columns is None else int(group.columns[0])
    teacher, student = ctx.predictions["teacher"][:, j], ctx.predictions["student"][:, j]
    path = plots.fidelity_scatter(teacher, student, root / "plots" / "fidelity_scatter.png", quantity=ctx.bundle.output_names[j])
    return str(Path(path).relative_to(root))


def evaluate_binary(ctx: EvaluationContext) -> EvaluationResult:
    """Binary: ROC-AUC/AP with CIs, retention, gain, fidelity at the operating points,
    calibration and the review plots."""
    result = EvaluationResult()
    n_boot, level = ctx.config.evaluation.bootstrap, ctx.config.evaluation.ci_level
    for name, fn in HEADLINE.items():
        for role, (point, low, high) in metrics.bootstrap_many(
            fn, ctx.y_true, ctx.judged, n_boot=n_boot, level=level, seed=ctx.seed
        ).items():
            result.metrics[f"{role}.{name}"] = point
            result.intervals[f"{role}.{name}"] = (low, high)
        result.metrics.update(_retention_and_gain(name, result.metrics))
        if "baseline" in ctx.predictions:
            point, low, high = metrics.bootstrap_difference(
                fn, ctx.y_true, ctx.predictions["student"], ctx.predictions["baseline"], n_boot=n_boot, level=level, seed=ctx.seed
            )
            result.intervals[f"gain.{name}"] = (low, high)
    for role, p in ctx.judged.items():
        cal = metrics.calibration(ctx.y_true, p)
        result.metrics.update({f"{role}.brier": cal["brier"], f"{role}.ece": cal["ece"]})
    result.metrics.update(_fidelity(ctx))
    result.add_operating_point(core_operating_point(ctx))
    if ctx.artifact_dir is not None:
        result.artifacts += _plots(ctx, ctx.artifact_dir)
    return result


def core_operating_point(ctx: EvaluationContext) -> OperatingPointRecord:
    """Where the core's thresholded metrics hold: the fidelity calls of student and baseline
    against the teacher's, each model at its own threshold for the same operating point."""
    op = ctx.config.evaluation.operating_point
    rule = f"{op.kind} {op.value:g}, chosen on validation for each model, then fixed"
    if op.kind == "threshold":
        rule = f"probability >= {op.value:g} for every model"
    return OperatingPointRecord(
        CORE_OPERATING_POINT, rule, [f"fidelity.{k}" for k in ("alert_overlap", "agreement")], dict(ctx.thresholds)
    )


def _retention_and_gain(name: str, values: dict[str, float], higher_is_better: bool = True) -> dict[str, float]:
    """``retention`` (student vs teacher, 1 = as good) and ``gain`` (student vs baseline, > 0 =
    better), oriented so that larger is better whether or not the metric is an error."""
    out = {}
    teacher, student, baseline = (values.get(f"{r}.{name}") for r in ("teacher", "student", "baseline"))
    if teacher is not None and student is not None:
        ratio = (student / teacher if teacher else None) if higher_is_better else (teacher / student if student else None)
        if ratio is not None:
            out[f"retention.{name}"] = ratio
    if baseline is not None and student is not None:
        out[f"gain.{name}"] = student - baseline if higher_is_better else baseline - student
    return out


def _fidelity(ctx: EvaluationContext) -> dict[str, float]:
    """Student (and baseline, for contrast) against the teacher at their operating points."""
    out: dict[str, float] = {}
    teacher = ctx.predictions["teacher"]
    for role, prefix in (("student", "fidelity"), ("baseline", "baseline_fidelity")):
        if role not in ctx.predictions:
            continue
        fid = metrics.fidelity(teacher, ctx.predictions[role], ctx.thresholds["teacher"], ctx.thresholds[role])
        out.update({f"{prefix}.{k}": float(v) for k, v in fid.items()})
    return out


def _plots(ctx: EvaluationContext, root: Path) -> list[str]:
    plot_dir = root / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    written = [
        plots.roc_pr_curves(ctx.y_true, ctx.judged, plot_dir / "roc_pr.png"),
        plots.reliability_diagram(ctx.y_true, ctx.judged, plot_dir / "reliability.png"),
        plots.fidelity_scatter(ctx.predictions["teacher"], ctx.predictions["student"], plot_dir / "fidelity_scatter.png"),
        plots.score_histograms(ctx.predictions, plot_dir / "score_histograms.png"),
    ]
    return [str(Path(p).relative_to(root)) for p in written]


def results_table(
    metric_names: list[str], values: dict[str, float], intervals: dict[str, tuple[float, float]], roles: list[str]
) -> list[dict[str, Any]]:
    """Rows of role x metric with intervals, for the model card and the console."""
    rows = []
    for role in roles:
        row: dict[str, Any] = {"model": role}
        for name in metric_names:
            key = f"{role}.{name}"
            if key not in values:
                continue
            low_high = intervals.get(key)
            row[name] = f"{values[key]:.4f}" + (f" [{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else "")
        rows.append(row)
    return rows
