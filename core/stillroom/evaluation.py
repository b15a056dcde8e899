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

from . import metrics, plots
from .context import EvaluationContext, EvaluationResult

HEADLINE = {"roc_auc": roc_auc_score, "average_precision": average_precision_score}


def operating_thresholds(kind: str, value: float, y_valid: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Each model's threshold at the same operating point, chosen on validation."""
    if kind == "threshold":
        return {role: float(value) for role in scores}
    if kind == "fpr":
        return {role: float(metrics.threshold_at_fpr(y_valid, s, value)) for role, s in scores.items()}
    return {role: float(metrics.threshold_for_alert_rate(s, value)) for role, s in scores.items()}


def evaluate_generic(ctx: EvaluationContext) -> EvaluationResult:
    """Headline metrics with CIs, retention and gain, fidelity, calibration, plots."""
    result = EvaluationResult()
    n_boot, level = ctx.config.evaluation.bootstrap, ctx.config.evaluation.ci_level
    for name, fn in HEADLINE.items():
        for role, (point, low, high) in metrics.bootstrap_many(
            fn, ctx.y_true, ctx.predictions, n_boot=n_boot, level=level, seed=ctx.seed
        ).items():
            result.metrics[f"{role}.{name}"] = point
            result.intervals[f"{role}.{name}"] = (low, high)
        result.metrics.update(_retention_and_gain(name, result.metrics))
        if "baseline" in ctx.predictions:
            point, low, high = metrics.bootstrap_difference(
                fn, ctx.y_true, ctx.predictions["student"], ctx.predictions["baseline"], n_boot=n_boot, level=level, seed=ctx.seed
            )
            result.intervals[f"gain.{name}"] = (low, high)
    for role, p in ctx.predictions.items():
        cal = metrics.calibration(ctx.y_true, p)
        result.metrics.update({f"{role}.brier": cal["brier"], f"{role}.ece": cal["ece"]})
    result.metrics.update(_fidelity(ctx))
    if ctx.artifact_dir is not None:
        result.artifacts += _plots(ctx, ctx.artifact_dir)
    return result


def _retention_and_gain(name: str, values: dict[str, float]) -> dict[str, float]:
    out = {}
    teacher, student, baseline = (values.get(f"{r}.{name}") for r in ("teacher", "student", "baseline"))
    if teacher and student is not None:
        out[f"retention.{name}"] = student / teacher
    if baseline is not None and student is not None:
        out[f"gain.{name}"] = student - baseline
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
        plots.roc_pr_curves(ctx.y_true, ctx.predictions, plot_dir / "roc_pr.png"),
        plots.reliability_diagram(ctx.y_true, ctx.predictions, plot_dir / "reliability.png"),
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
