"""The core's generic evaluation: how good, how faithful, how calibrated.

Teacher, student and baseline are evaluated on the same held-out rows, with bootstrap
intervals drawn on the same resamples so that their intervals are comparable. Every report
states "retained vs teacher" (student / teacher) and "gained vs no-teacher baseline"
(student - baseline, with a paired interval).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def metric_named(task_type: str, output_types: list[str] | None, name: str) -> measures.MetricDef | None:
    """The core's metric ``name`` for this task as a function of whole label and output arrays
    (a mixed task's on the columns of the output group it judges), or None when the core does not
    compute one by that name. Why: a comparison made outside a run (a search trial against the
    default student) must score the outputs exactly as the run's evaluation did."""
    if kinds.has_scalar_output(task_type):
        fn = HEADLINE.get(name)
        return None if fn is None else measures.MetricDef(name, fn, best=1.0)
    for group in measures.output_groups(task_type, output_types):
        for m in measures.METRICS[group.kind]:
            if m.name == name:
                return measures.MetricDef(name, _on_group(group, m.fn), m.higher_is_better, best=m.best)
    return None


def _on_group(group: measures.OutputGroup, fn: Any) -> Any:
    def judged(y: np.ndarray, out: np.ndarray) -> float:
        return float(fn(group.take(y), group.take(out)))

    return judged


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
    result.not_estimable.update(_few_output_events(ctx, groups))
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
    pair = _gain_pair(predictions, m.higher_is_better)
    intervals, gain = metrics.bootstrap_with_gain(m.fn, y, predictions, pair, n_boot=n_boot, level=level, seed=ctx.seed)
    for role, (point, low, high) in intervals.items():
        result.metrics[f"{role}.{m.name}"] = point
        result.intervals[f"{role}.{m.name}"] = (low, high)
        if m.per_output is not None and ctx.bundle.n_outputs > 1:
            values = measures.per_column(m.per_output, y, predictions[role])
            for name, value in zip(names, values, strict=True):
                result.metrics[output_metric_key(role, m.name, name, ctx.bundle.n_outputs)] = value
    result.metrics.update(_retention_and_gain(m.name, result.metrics, m.higher_is_better))
    if gain is not None:
        result.intervals[f"gain.{m.name}"] = (gain.low, gain.high)
    if m.per_output is not None and ctx.bundle.n_outputs > 1:
        result.update(_per_output_comparisons(ctx, m, y, predictions, names))
    return result


def _per_output_comparisons(
    ctx: EvaluationContext, m: measures.MetricDef, y: np.ndarray, predictions: dict[str, np.ndarray], names: list[str]
) -> EvaluationResult:
    """Retention and gain (with its paired CI) of one metric on each output of a multi-output
    model, under ``retention.<metric>.<output>`` and ``gain.<metric>.<output>``: a gate judges
    every output, not only the macro mean that can hide one lost endpoint."""
    assert m.per_output is not None
    result, column_metric = EvaluationResult(), measures.macro(m.per_output)
    n_boot, level = ctx.config.evaluation.bootstrap, ctx.config.evaluation.ci_level
    for j, name in enumerate(names):
        key = output_metric_key("", m.name, name, ctx.bundle.n_outputs).lstrip(".")
        values = {f"{role}.{key}": column_metric(y[:, j], p[:, j]) for role, p in predictions.items()}
        result.metrics.update(_retention_and_gain(key, values, m.higher_is_better))
        if (pair := _gain_pair(predictions, m.higher_is_better)) is not None:
            better, worse = pair
            _, low, high = metrics.bootstrap_difference(
                column_metric,
                y[:, j],
                predictions[better][:, j],
                predictions[worse][:, j],
                n_boot=n_boot,
                level=level,
                seed=ctx.seed,
            )
            result.intervals[f"gain.{key}"] = (low, high)
    return result


def _gain_pair(predictions: dict[str, np.ndarray], higher_is_better: bool) -> tuple[str, str] | None:
    """(better, worse) whose difference is the student's gain over its baseline, oriented so a
    positive gain is good; None without a baseline."""
    if "baseline" not in predictions or "student" not in predictions:
        return None
    return ("student", "baseline") if higher_is_better else ("baseline", "student")


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
    pair = _gain_pair(ctx.judged, higher_is_better=True)
    for name, fn in HEADLINE.items():
        intervals, gain = metrics.bootstrap_with_gain(fn, ctx.y_true, ctx.judged, pair, n_boot=n_boot, level=level, seed=ctx.seed)
        for role, (point, low, high) in intervals.items():
            result.metrics[f"{role}.{name}"] = point
            result.intervals[f"{role}.{name}"] = (low, high)
        result.metrics.update(_retention_and_gain(name, result.metrics))
        if gain is not None:
            result.intervals[f"gain.{name}"] = (gain.low, gain.high)
    for role, p in ctx.judged.items():
        cal = metrics.calibration(ctx.y_true, p)
        result.metrics.update({f"{role}.brier": cal["brier"], f"{role}.ece": cal["ece"]})
    result.metrics.update(_fidelity(ctx))
    result.add_operating_point(core_operating_point(ctx))
    result.not_estimable.update(_few_binary_events(ctx))
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


def _derived(metric: str, roles: list[str]) -> list[str]:
    """Every logged name built from one metric: each role's value, retention and gain."""
    return [*(f"{role}.{metric}" for role in roles), f"retention.{metric}", f"gain.{metric}"]


def _few_binary_events(ctx: EvaluationContext) -> dict[str, str]:
    """Binary metrics computed on fewer than ``evaluation.min_events`` events, with why: ROC-AUC
    and AP (and their retention and gain) on too few positives or negatives; alert overlap on
    too few teacher alerts at the operating point."""
    minimum, out = ctx.config.evaluation.min_events, {}
    y = np.asarray(ctx.y_true).reshape(-1)
    roles = list(ctx.predictions)
    for label, count in (("positives", int(np.sum(y == 1))), ("negatives", int(np.sum(y == 0)))):
        if count < minimum:
            out.update(dict.fromkeys((k for m in HEADLINE for k in _derived(m, roles)), too_few(count, f"test {label}", minimum)))
            break
    alerts = int(np.sum(ctx.predictions["teacher"] >= ctx.thresholds["teacher"]))
    if alerts < minimum:
        why = too_few(alerts, "teacher alerts at the operating point", minimum)
        out.update(dict.fromkeys(("fidelity.alert_overlap", "baseline_fidelity.alert_overlap"), why))
    return out


def _few_output_events(ctx: EvaluationContext, groups: list[measures.OutputGroup]) -> dict[str, str]:
    """Per output, metrics computed on fewer than ``evaluation.min_events`` events: positives of a
    yes/no output, labelled rows of a value output, rows of the rarest class of a multiclass
    label. A macro mean is not estimable when none of its outputs is."""
    minimum, out = ctx.config.evaluation.min_events, {}
    roles, n_outputs = list(ctx.predictions), ctx.bundle.n_outputs
    for group in groups:
        y, names = group.take(ctx.y_true), group.names(ctx.bundle.output_names)
        counts = _event_counts(group.kind, np.asarray(y, dtype=float))
        unit = {"regression": "labelled test rows", "multiclass": "test rows of the rarest class"}.get(
            group.kind, "test positives"
        )
        few = {i: too_few(c, unit, minimum) for i, c in enumerate(counts) if c < minimum}
        for m in measures.METRICS[group.kind]:
            if len(few) == len(counts):
                out.update(dict.fromkeys(_derived(m.name, roles), next(iter(few.values()))))
            if m.per_output is not None and n_outputs > 1:
                for i, why in few.items():
                    key = output_metric_key("", m.name, names[i], n_outputs).lstrip(".")
                    out.update(dict.fromkeys(_derived(key, roles), why))
    return out


def too_few(count: int, events: str, minimum: int) -> str:
    """Why a metric is not estimable, e.g. ``"12 test positives < 30"`` (read back by
    :func:`not_estimable_rows`; the gate shows it as the rule's reason)."""
    return f"{count} {events} < {minimum}"


_TOO_FEW = re.compile(r"^(?P<count>\d+) (?P<events>.+) < (?P<minimum>\d+)$")


def not_estimable_rows(not_estimable: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per metric not estimable, for the model card and the report: the metric, the
    events it rested on and the minimum (``evaluation.min_events``); a reason in another form
    (a vertical's own) is shown whole."""
    rows = []
    for metric, why in sorted(not_estimable.items()):
        found = _TOO_FEW.match(why)
        events, minimum = (f"{found['count']} {found['events']}", int(found["minimum"])) if found else (why, "")
        rows.append({"metric": metric, "events": events, "min_events": minimum})
    return rows


def _event_counts(kind: str, y: np.ndarray) -> list[int]:
    """The events each output's metrics rest on (see :func:`_few_output_events`)."""
    if kind == "multiclass":
        labels = y.reshape(-1)
        return [int(np.bincount(labels[np.isfinite(labels)].astype(int)).min())] if np.isfinite(labels).any() else [0]
    columns = y[:, None] if y.ndim == 1 else y
    if kind == "regression":
        return [int(np.isfinite(columns[:, j]).sum()) for j in range(columns.shape[1])]
    return [int(np.nansum(columns[:, j] == 1)) for j in range(columns.shape[1])]


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
