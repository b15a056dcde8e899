"""Review plots, written as PNG artifacts for the MLflow run and the model card.

Each function draws on its own :class:`matplotlib.figure.Figure` (never pyplot's global
figure registry), so nothing leaks between plots, batch jobs need no display and no
backend switch, and a user's interactive backend is left alone. Each writes one PNG to
``path`` (creating parent folders) and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from .binary import expected_calibration_error, reliability_curve

MAX_SCATTER_POINTS = 50_000
"""Fidelity scatters are subsampled to this many points: enough to see the shape, small PNG."""


def _save(fig: Figure, path: str | Path) -> Path:
    """Write the figure as PNG and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    return out


def _identity(ax: Axes, label: str, span: tuple[float, float] = (0.0, 1.0)) -> None:
    ax.plot(span, span, linestyle="--", color="grey", linewidth=1, label=label)


def roc_pr_curves(y_true: Any, scores: Mapping[str, Any], path: str | Path) -> Path:
    """ROC (left) and precision-recall (right), one line per model, AUC / AP in the legend.

    PR is shown next to ROC because with rare positives ROC looks good for almost any
    model; the PR panel's dotted line is the prevalence (a random model's precision).
    """
    y = np.asarray(y_true)
    fig = Figure(figsize=(11, 4.8))
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC = {roc_auc_score(y, s):.3f})")
        precision, recall, _ = precision_recall_curve(y, s)
        pr_ax.step(recall, precision, where="post", label=f"{name} (AP = {average_precision_score(y, s):.3f})")
    _identity(roc_ax, "random")
    pr_ax.axhline(float(y.mean()), linestyle=":", color="grey", label=f"prevalence = {y.mean():.4f}")
    roc_ax.set(title="ROC curve", xlabel="False positive rate", ylabel="True positive rate (recall)")
    pr_ax.set(title="Precision-recall curve", xlabel="Recall", ylabel="Precision", ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def reliability_diagram(y_true: Any, scores: Mapping[str, Any], path: str | Path, n_bins: int = 15) -> Path:
    """Observed positive rate vs mean predicted probability per bin (ECE in the legend),
    with the number of rows per bin below: a well-calibrated model follows the diagonal."""
    fig = Figure(figsize=(6.5, 7))
    curve_ax, count_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    _identity(curve_ax, "perfectly calibrated")
    width = 1.0 / n_bins / (len(scores) + 1)
    for i, (name, p) in enumerate(scores.items()):
        table = reliability_curve(y_true, p, n_bins)
        filled = table[table["count"] > 0]
        ece = expected_calibration_error(y_true, p, n_bins)
        curve_ax.plot(filled["mean_predicted"], filled["fraction_positive"], marker="o", label=f"{name} (ECE = {ece:.4f})")
        count_ax.bar(table["bin_lower"] + (i + 0.5) * width, table["count"], width=width, label=name)
    curve_ax.set(title="Reliability diagram", ylabel="Observed fraction of positives", xlim=(0, 1), ylim=(0, 1))
    curve_ax.legend(loc="upper left", fontsize="small")
    curve_ax.grid(alpha=0.3)
    count_ax.set(xlabel="Predicted probability", ylabel="Rows per bin (log)", yscale="log")
    return _save(fig, path)


def fidelity_scatter(
    teacher_p: Any,
    student_p: Any,
    path: str | Path,
    threshold: float | None = None,
    max_points: int = MAX_SCATTER_POINTS,
    seed: int = 0,
    quantity: str = "probability",
) -> Path:
    """Student vs teacher output per row (log-density hexbin), identity line dashed.

    Rows off the diagonal are where the student disagrees; with ``threshold``, the
    off-diagonal quadrants are the decisions that flip. Probabilities are drawn on [0, 1];
    any other ``quantity`` (a regression value) on the range both models cover.
    """
    t, s = _sample(np.asarray(teacher_p, dtype=float), np.asarray(student_p, dtype=float), max_points, seed)
    lo, hi = (0.0, 1.0) if quantity == "probability" else (float(min(t.min(), s.min())), float(max(t.max(), s.max())))
    fig = Figure(figsize=(6.5, 6))
    ax = fig.subplots()
    hb = ax.hexbin(t, s, gridsize=60, extent=(lo, hi, lo, hi), bins="log", mincnt=1, cmap="viridis")
    fig.colorbar(hb, ax=ax, label="rows (log scale)")
    _identity(ax, "student = teacher", (lo, hi))
    if threshold is not None:
        ax.axvline(threshold, color="red", linewidth=1, label=f"threshold = {threshold:.4g}")
        ax.axhline(threshold, color="red", linewidth=1)
    ax.set(
        title=f"Fidelity: student vs teacher ({len(t):,} rows shown)",
        xlabel=f"Teacher {quantity}",
        ylabel=f"Student {quantity}",
        xlim=(lo, hi),
        ylim=(lo, hi),
    )
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def _sample(a: np.ndarray, b: np.ndarray, max_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same random rows of both arrays, at most ``max_points`` of them."""
    if len(a) <= max_points:
        return a, b
    idx = np.random.default_rng(seed).choice(len(a), size=max_points, replace=False)
    return a[idx], b[idx]


def subgroup_bars(table: pd.DataFrame, metric_col: str, group_col: str, path: str | Path) -> Path:
    """One bar per group for ``metric_col``; grouped bars, one per model, if ``table`` has a
    ``model`` column: shows whether a metric (recall, alert rate, ...) differs across groups."""
    wide = (
        table.pivot_table(index=group_col, columns="model", values=metric_col, aggfunc="first", sort=False)
        if "model" in table.columns
        else table.set_index(group_col)[[metric_col]]
    )
    groups = np.arange(len(wide))
    width = 0.8 / max(wide.shape[1], 1)
    fig = Figure(figsize=(max(6.0, 0.6 * len(wide) * max(wide.shape[1], 1) + 2), 4.8))
    ax = fig.subplots()
    for i, column in enumerate(wide.columns):
        ax.bar(groups + (i - (wide.shape[1] - 1) / 2) * width, wide[column].to_numpy(dtype=float), width, label=str(column))
    ax.set_xticks(groups, [str(g) for g in wide.index], rotation=30, ha="right")
    ax.set(title=f"{metric_col} by {group_col}", xlabel=group_col, ylabel=metric_col)
    if "model" in table.columns:
        ax.legend(title="model", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def score_histograms(scores: Mapping[str, Any], path: str | Path, n_bins: int = 50) -> Path:
    """Overlaid score distributions on ``[0, 1]`` (log counts, so the rare high scores show):
    a student whose distribution differs from the teacher's shifts every threshold."""
    edges = np.linspace(0.0, 1.0, n_bins + 1).tolist()
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, s in scores.items():
        ax.hist(np.clip(np.asarray(s, dtype=float), 0.0, 1.0), bins=edges, histtype="step", linewidth=1.5, label=name)
    ax.set(title="Score distributions", xlabel="Predicted probability", ylabel="Rows (log scale)", yscale="log")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path)
