"""The medical evaluator: the compliance profile's metrics, tables and plots for each model.

The core already logs AUROC with its bootstrap CI, ECE, fidelity and efficiency (parameters,
bytes, CPU latency per image p50/p99). This adds, for teacher, student and baseline alike:

* the operating threshold, chosen on validation (``medical.operating_point``) and fixed;
* at it, on test: sensitivity, specificity, PPV, NPV, accuracy, each with a bootstrap CI: the
  numbers a quality file quotes, recorded with the operating point for the model card (the
  core's ``evaluation.operating_point`` only places the fidelity calls); ``argmax_accuracy``
  (P >= 0.5) beside them, the accuracy published results quote;
* ``tables/per_class.csv``: per class (or label) AUROC, sensitivity, specificity, PPV, NPV;
* ``tables/subgroups.csv`` and ``plots/subgroup_sensitivity.png`` when the data carries
  metadata (site, sex, age group ...), and the worst subgroup's figures as metrics;
* ``tables/calibration.csv`` and ``plots/medical_reliability.png`` (reliability diagram:
  P(positive) for binary, top-label confidence for multiclass, every label for multilabel).

The student's thresholds are a decision, not only a figure: they go with the registered model
(:meth:`~stillroom_medical.student.CNNStudent.ship_with`), so a scoring job calls images at
the operating point this run chose and reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stillroom.contract import EvaluationContext, EvaluationResult, OperatingPointRecord, plots
from stillroom.contract import metrics as core_metrics

from .imagefiles import Preprocessing
from .metrics import OperatingPoint, auroc, calibration_table, choose_threshold, confusion_rates, ece, one_vs_rest
from .scorer import ScoringSpec

RATES = ("sensitivity", "specificity", "ppv", "npv", "accuracy")
SCREENING = "medical.operating_point"


def evaluate_medical(ctx: EvaluationContext) -> EvaluationResult:
    result = EvaluationResult()
    cfg = ctx.config.medical
    op = OperatingPoint(cfg.operating_point.kind, cfg.operating_point.value)
    kind = ctx.bundle.task_type
    y_valid = ctx.bundle.y(ctx.bundle.validation)
    names = _class_names(ctx)
    per_class, calibration = [], []
    thresholds: dict[str, list[float]] = {}
    for role, proba in ctx.predictions.items():
        valid = one_vs_rest(y_valid, ctx.valid_predictions[role], kind)
        test = one_vs_rest(ctx.y_true, proba, kind)
        thresholds[role] = [choose_threshold(*_known(y, p), op) for y, p, _ in valid]
        rows = [
            _class_row(role, name, y, p, call, t) for name, (y, p, call), t in zip(names, test, thresholds[role], strict=True)
        ]
        per_class += rows
        result.metrics.update(_headline(role, kind, rows, thresholds[role]))
        calibration.append(_calibration(role, kind, ctx.y_true, proba, cfg.calibration_bins))
    if kind == "binary":
        result.intervals.update(_rate_intervals(ctx, thresholds))
        result.metrics.update(_argmax_accuracy(ctx))
    result.add_operating_point(_screening_point(kind, op, thresholds, names[0]))
    if kind == "binary":
        result.add_operating_point(
            OperatingPointRecord("argmax", "the most probable class: P(positive) >= 0.5", ["argmax_accuracy"])
        )
    if "student" in thresholds and hasattr(ctx.models.get("student"), "ship_with"):
        ctx.models["student"].ship_with(scoring_spec(ctx, thresholds["student"], op))
    result.tables["per_class"] = pd.DataFrame(per_class)
    table = pd.concat(calibration, ignore_index=True)
    result.tables["calibration"] = table
    for role, part in table.groupby("model", sort=False):
        result.metrics[f"{role}.calibration_ece"] = ece(part)
    meta = [c for c in ctx.bundle.details.get("metadata_columns", []) if c in ctx.frame.columns]
    if meta:
        groups = _subgroups(ctx, meta, thresholds, cfg.min_subgroup_size)
        result.tables["subgroups"] = groups
        result.metrics.update(_worst_groups(groups, cfg.min_subgroup_size))
    if ctx.artifact_dir is not None:
        result.artifacts += _plots(ctx.artifact_dir, table, result.tables.get("subgroups"))
    return result


def scoring_spec(ctx: EvaluationContext, thresholds: list[float], op: OperatingPoint) -> ScoringSpec:
    """What a scoring job needs besides the network: classes, thresholds (none for multiclass:
    the call is the most probable class), the input shape and how files become inputs."""
    details, kind = ctx.bundle.details, ctx.bundle.task_type
    shape = [int(d) for d in details["image_shape"]]
    return ScoringSpec(
        task_type=kind,
        class_names=[str(n) for n in details.get("class_names") or ctx.bundle.output_names],
        thresholds=[] if kind == "multiclass" else [float(t) for t in thresholds],
        shape=shape,
        preprocessing=details.get("preprocessing") or Preprocessing(shape[-1], shape[0]).as_dict(),
        operating_point={"kind": op.kind, "value": op.value, "chosen_on": "validation"},
    )


def _class_names(ctx: EvaluationContext) -> list[str]:
    names = ctx.bundle.details.get("class_names") or []
    if ctx.bundle.task_type == "binary":
        return [names[1] if len(names) > 1 else "positive"]
    return list(names) if names else list(ctx.bundle.output_names)


def _known(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = y >= 0  # multilabel: -1 marks a missing label
    return y[keep], p[keep]


def _class_row(role: str, name: str, y: np.ndarray, p: np.ndarray, call: np.ndarray | None, threshold: float) -> dict[str, Any]:
    y, p = _known(y, p) if call is None else (y, p)
    rates = confusion_rates(y, call.astype(float) if call is not None else p, 0.5 if call is not None else threshold)
    return {
        "model": role,
        "class": name,
        "support": int(y.sum()),
        "n": len(y),
        "auroc": auroc(y, p),
        "threshold": threshold,
        **rates,
    }


def _headline(role: str, kind: str, rows: list[dict[str, Any]], thresholds: list[float]) -> dict[str, float]:
    """Binary: the rates themselves; multiclass/multilabel: their macro average (+ per class)."""
    if kind == "binary":
        row = rows[0]
        return {f"{role}.{r}": row[r] for r in RATES} | {f"{role}.operating_threshold": thresholds[0]}
    out = {f"{role}.macro_{r}": float(np.nanmean([row[r] for row in rows])) for r in RATES if r != "accuracy"}
    for row in rows:
        for r in ("sensitivity", "specificity"):
            out[core_metrics.metric_key(f"{role}.{r}.{row['class']}")] = row[r]
    return out


def _screening_point(kind: str, op: OperatingPoint, thresholds: dict[str, list[float]], positive: str) -> OperatingPointRecord:
    """The operating point of the medical rates (not the core's fidelity point): how it was
    chosen, each model's threshold, the rates computed there."""
    if op.kind == "threshold":
        rule = f"probability >= {op.value:g} for every model"
    elif op.kind == "youden":
        rule = "Youden's J maximised on validation for each model, then fixed"
    else:
        which = "highest" if op.kind == "sensitivity" else "lowest"  # the point reaching the target that gives least away
        rule = f"{op.kind} {op.value:g} on validation (the {which} threshold reaching it) for each model, then fixed"
    if kind == "multiclass":
        return OperatingPointRecord(
            SCREENING, "the most probable class (argmax)", [f"macro_{r}" for r in RATES if r != "accuracy"]
        )
    if kind == "binary":
        names, points = list(RATES), {role: t[0] for role, t in thresholds.items()}
        rule += f"; positive class: {positive!r}"
    else:
        names, points = [f"macro_{r}" for r in RATES if r != "accuracy"], {}
    return OperatingPointRecord(SCREENING, rule + ("" if kind == "binary" else ", per label"), names, points)


def _argmax_accuracy(ctx: EvaluationContext) -> dict[str, float]:
    """Accuracy of the most probable class (P(positive) >= 0.5): the figure published results
    quote (MedMNIST), beside ``accuracy`` at the screening operating point."""
    return {f"{role}.argmax_accuracy": float(np.mean((p >= 0.5) == (ctx.y_true == 1))) for role, p in ctx.predictions.items()}


def _rate_intervals(ctx: EvaluationContext, thresholds: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Bootstrap CIs of the rates at each model's fixed threshold (and of argmax accuracy)."""
    out = {}
    n_boot, level = ctx.config.evaluation.bootstrap, ctx.config.evaluation.ci_level
    for role, p in ctx.predictions.items():
        _, low, high = core_metrics.bootstrap_ci(
            lambda y, s: float(np.mean((s >= 0.5) == (y == 1))), ctx.y_true, p, n_boot=n_boot, level=level, seed=ctx.seed
        )
        out[f"{role}.argmax_accuracy"] = (low, high)
        t = thresholds[role][0]
        for rate in RATES:
            _, low, high = core_metrics.bootstrap_ci(
                lambda y, s, r=rate, t=t: confusion_rates(y, s, t)[r], ctx.y_true, p, n_boot=n_boot, level=level, seed=ctx.seed
            )
            out[f"{role}.{rate}"] = (low, high)
    return out


def _calibration(role: str, kind: str, y: np.ndarray, proba: np.ndarray, bins: int) -> pd.DataFrame:
    if kind == "binary":
        table = calibration_table(y, proba, n_bins=bins)
    elif kind == "multiclass":
        table = calibration_table(y, proba.max(axis=1), correct=proba.argmax(axis=1) == y, n_bins=bins)
    else:
        known = ~np.isnan(y)
        table = calibration_table(y[known], proba[known], n_bins=bins)
    return table.assign(model=role)


def _subgroups(ctx: EvaluationContext, columns: list[str], thresholds: dict[str, list[float]], min_size: int) -> pd.DataFrame:
    """Per metadata column and value: size, prevalence, AUROC and rates at the fixed threshold."""
    rows = []
    kind = ctx.bundle.task_type
    for col in columns:
        values = ctx.frame[col].astype(str).to_numpy()
        for value in sorted(set(values)):
            inside = values == value
            for role, proba in ctx.predictions.items():
                row = {
                    "column": col,
                    "group": value,
                    "model": role,
                    "n": int(inside.sum()),
                    "small": bool(inside.sum() < min_size),
                }
                parts = one_vs_rest(ctx.y_true[inside], proba[inside], kind)
                if kind == "binary":
                    y, p, _ = parts[0]
                    row |= {"prevalence": float(y.mean()), "auroc": auroc(y, p), **confusion_rates(y, p, thresholds[role][0])}
                else:
                    row["auroc"] = float(np.nanmean([auroc(*_known(y, p)) for y, p, _ in parts]))
                    if kind == "multiclass":
                        row["accuracy"] = float(np.mean(proba[inside].argmax(axis=1) == ctx.y_true[inside]))
                rows.append(row)
    return pd.DataFrame(rows)


def _worst_groups(groups: pd.DataFrame, min_size: int) -> dict[str, float]:
    """The weakest subgroup (of at least ``min_size`` images) per model: what a reviewer checks first."""
    out = {}
    big = groups[~groups["small"]]
    for role, part in big.groupby("model", sort=False):
        for metric in ("sensitivity", "specificity", "auroc"):
            if metric in part and part[metric].notna().any():
                out[f"{role}.worst_subgroup_{metric}"] = float(part[metric].min())
    return out


def _plots(root: Path, calibration: pd.DataFrame, groups: pd.DataFrame | None) -> list[str]:
    plot_dir = Path(root) / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    written = [_reliability(calibration, plot_dir / "medical_reliability.png")]
    if groups is not None and "sensitivity" in groups:
        labelled = groups.assign(subgroup=groups["column"] + "=" + groups["group"])
        written.append(plots.subgroup_bars(labelled, "sensitivity", "subgroup", plot_dir / "subgroup_sensitivity.png"))
    elif groups is not None:
        labelled = groups.assign(subgroup=groups["column"] + "=" + groups["group"])
        written.append(plots.subgroup_bars(labelled, "auroc", "subgroup", plot_dir / "subgroup_auroc.png"))
    return [str(Path(p).relative_to(root)) for p in written]


def _reliability(table: pd.DataFrame, path: Path) -> Path:
    """Observed frequency against mean confidence per bin, one line per model (the diagonal is perfect)."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    for role, part in table.groupby("model", sort=False):
        ax.plot(part["confidence"], part["observed"], marker="o", label=f"{role} (ECE {ece(part):.3f})")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="reliability diagram (test split)")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
