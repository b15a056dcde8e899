"""Can this test set show non-inferiority? The paired gain's interval, measured from a run's predictions.

``noninferior(metric)`` passes when the lower bound of the paired bootstrap CI of the gain
(student - baseline) is at least ``-margin``. Two things decide that besides the student:
how wide the interval is on the test set (a student *equal* to its baseline passes only if
the half-width is below the margin), and, near the threshold, the bootstrap's own resampling
noise (the 2.5% quantile of 200 resamples is their 5th smallest value). Both are measured here
on the held-out labels and predictions of a real run, which a bench records with
:func:`recording` (an evaluator that keeps them and adds no metric).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from stillroom.contract import EvaluationResult, EvaluatorSpec, hookimpl
from stillroom.distillation.evaluation import HEADLINE
from stillroom.metrics import (
    Interval,
    NonInferiorityPower,
    bootstrap_difference,
    bootstrap_distribution,
    percentile_interval,
)

RECORDER = "bench.held_out"
ANALYSIS_SEEDS = 20  # other bootstrap draws, to see where the bound of the run's resamples falls
PRECISE_BOOT = 1000  # at least this many resamples for the interval's bounds and width


class HeldOutRecorder:
    """A plugin: keeps the held-out labels and every role's predictions of the last run."""

    def __init__(self) -> None:
        self.last: dict[str, np.ndarray] = {}

    @hookimpl
    def stillroom_evaluators(self) -> list[EvaluatorSpec]:
        return [EvaluatorSpec(RECORDER, "*", self._keep, "bench: keeps held-out predictions, adds no metric")]

    def _keep(self, ctx: Any) -> EvaluationResult:
        self.last = {"y": np.asarray(ctx.y_true)} | {role: np.asarray(p) for role, p in ctx.predictions.items()}
        return EvaluationResult()


@contextmanager
def recording() -> Iterator[HeldOutRecorder]:
    """The recorder, registered with the process-wide plugin manager for the block's runs."""
    from stillroom.api import get_plugin_manager

    recorder = HeldOutRecorder()
    pm = get_plugin_manager()
    pm.register_plugin(recorder, RECORDER)
    try:
        yield recorder
    finally:
        pm.unregister_plugin(RECORDER)


def gain_interval(metric: str, held: dict[str, np.ndarray], n_boot: int, seed: int, level: float = 0.95) -> Interval:
    """``(point, low, high)`` of student - baseline on ``metric``, as the core's evaluator computes it."""
    y, student, baseline = held["y"], held["student"], held["baseline"]
    return bootstrap_difference(HEADLINE[metric], y, student, baseline, n_boot=n_boot, level=level, seed=seed)


def analyse(metric: str, held: dict[str, np.ndarray], margin: float, n_boot: int, run_seed: int) -> dict[str, float]:
    """For one headline metric of one run:

    * ``run_low``: the bound the run's gate read (its ``n_boot`` and seed), recomputed here;
    * ``precise_low``, ``half_width``, ``se``: from :data:`PRECISE_BOOT` paired resamples;
    * ``low_min/median/max`` and ``pass_share``: the bound of ``n_boot`` resamples in each of
      :data:`ANALYSIS_SEEDS` disjoint blocks of one larger draw (resamples are independent, so a
      block is what another bootstrap seed would give; overlapping subsets would understate the
      spread, and with a pool of exactly ``n_boot`` resamples every "draw" was the same), and how
      often it clears ``-margin``;
    * ``p_pass_equal``: the chance a student exactly as good as its baseline passes (normal
      approximation: the bound is gain - 1.96 se), and ``n_for_80``: test rows for 80% of such
      students to pass at this margin (se shrinks as 1/sqrt(n)); both by
      :class:`~stillroom.metrics.NonInferiorityPower`, the gate's own "inconclusive" figures."""
    point, run_low, _ = gain_interval(metric, held, n_boot, run_seed)
    pool = max(PRECISE_BOOT, n_boot * ANALYSIS_SEEDS)
    dist = bootstrap_distribution(
        HEADLINE[metric], held["y"], {"s": held["student"], "b": held["baseline"]}, n_boot=pool, seed=run_seed + 1
    )
    every = dist["s"] - dist["b"]
    blocks = every[: n_boot * ANALYSIS_SEEDS].reshape(ANALYSIS_SEEDS, n_boot)
    lows = [percentile_interval(block[np.isfinite(block)])[0] for block in blocks]
    gains = every[np.isfinite(every)]
    precise_low, precise_high = percentile_interval(gains)
    se = float(np.std(gains, ddof=1))
    power = NonInferiorityPower(se, margin)
    n = len(held["y"])
    return {
        "gain": point,
        "run_low": run_low,
        "low_min": min(lows),
        "low_median": statistics.median(lows),
        "low_max": max(lows),
        "pass_share": sum(low >= -margin for low in lows) / len(lows),
        "precise_low": precise_low,
        "half_width": (precise_high - precise_low) / 2,
        "se": se,
        "p_pass_equal": power.pass_probability_if_equal(),
        "n_for_80": n * power.rows_factor(),
        "margin": margin,
        "n_boot": float(n_boot),
        "pool": float(pool),
        "rows": float(n),
        "positives": float(np.sum(held["y"])),
    }


def analyse_run(task: str, held: dict[str, np.ndarray], settings: list[str], seed: int) -> dict[str, dict[str, float]]:
    """Every headline metric of a binary run, at the margin and resamples of the run's own config."""
    from stillroom.api import get_plugin_manager
    from stillroom.distillation.pipeline import load_config

    cfg = load_config(get_plugin_manager().task(task), None, settings)
    return {m: analyse(m, held, cfg.gate.margin_for(m), cfg.evaluation.bootstrap, seed) for m in HEADLINE}


def analysis_section(runs: list[tuple[int, dict[str, dict[str, float]]]]) -> list[str]:
    """The table below with what it shows, for a bench report."""
    analysed = [(seed, a) for seed, a in runs if a]
    if not analysed:
        return []
    return [
        "Can this test set show non-inferiority? From each run's held-out labels and predictions (recorded by a bench "
        "evaluator that adds no metric; the bound recomputed from them equals the run's logged one): the lower bound of "
        f"the paired gain's 95% interval the gate read, where that bound falls in {ANALYSIS_SEEDS} other draws of as many "
        f"resamples ({_pool_text(analysed)}), the bound and half-width from all of them, "
        "and the chance that a student exactly as good as its baseline passes `noninferior` at this margin (normal "
        "approximation: bound = gain - 1.96 se), with the test rows it would take for 80%.",
        "",
        *analysis_table(analysed),
        "",
        *analysis_summary(analysed),
        "",
    ]


def _pool_text(runs: list[tuple[int, dict[str, dict[str, float]]]]) -> str:
    """How the other draws were made: disjoint blocks of one draw, or (records from before that
    fix, without ``pool``) subsets of 1,000 resamples."""
    pools = {a.get("pool") for _, per_metric in runs for a in per_metric.values()}
    if None in pools:
        return "subsets of 1,000 paired resamples"
    return f"disjoint blocks of {_span([float(p) for p in pools if p is not None], '{:,.0f}')} paired resamples"


def _span(values: list[float], fmt: str) -> str:
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}-{high}"


def analysis_summary(runs: list[tuple[int, dict[str, dict[str, float]]]]) -> list[str]:
    """One line per metric over the seeds: interval width against the margin, what an equal
    student could expect, and how far the bound of the run's resamples moves between draws."""
    lines = []
    for metric in dict.fromkeys(m for _, a in runs for m in a):
        rows = [a[metric] for _, a in runs if metric in a]
        margin = rows[0]["margin"]
        lines.append(
            f"- `{metric}`: 95% CI half-width of the gain {_span([r['half_width'] for r in rows], '{:.4f}')} against a "
            f"margin of {margin:g}; a student exactly as good as its baseline would pass `noninferior` with probability "
            f"{_span([r['p_pass_equal'] for r in rows], '{:.0%}')}, 80% would need about "
            f"{_span([r['n_for_80'] for r in rows], '{:,.0f}')} test rows (this test set: "
            f"{_span([r['rows'] for r in rows], '{:,.0f}')}); the bound of {rows[0]['n_boot']:.0f} resamples moves by up "
            f"to {max(r['low_max'] - r['low_min'] for r in rows):.4f} between draws."
        )
    return lines


def analysis_table(runs: list[tuple[int, dict[str, dict[str, float]]]]) -> list[str]:
    """Per seed and metric: the run's bound, its spread over bootstrap seeds, the interval's
    width and what a student equal to its baseline could expect."""
    lines = [
        "| seed | metric | margin | gain | bound the gate read (resamples) | same number of resamples, "
        f"{ANALYSIS_SEEDS} other draws: bound min / median / max | share of those >= -margin | bound at "
        "all resamples | CI half-width | P(pass) for a student equal to its baseline | test rows for 80% |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, per_metric in runs:
        for metric, a in per_metric.items():
            lines.append(
                f"| {seed} | {metric} | {a['margin']:g} | {a['gain']:+.4f} | {a['run_low']:+.4f} ({a['n_boot']:.0f}) | "
                f"{a['low_min']:+.4f} / {a['low_median']:+.4f} / {a['low_max']:+.4f} | {a['pass_share']:.0%} | "
                f"{a['precise_low']:+.4f} | {a['half_width']:.4f} | {a['p_pass_equal']:.0%} | {a['n_for_80']:,.0f} |"
            )
    return lines
