"""The Pareto front as a reviewer reads it: a table of every trial and a plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .choice import TrialView


def trials_table(
    trials: list[TrialView], front: list[TrialView], feasible: list[TrialView], objectives: dict[str, str]
) -> pd.DataFrame:
    """One row per trial: state, params, objective values on validation, feasible, on the front."""
    on_front, ok = {t.number for t in front}, {t.number for t in feasible}
    rows = []
    for t in trials:
        rows.append(
            {
                "trial": t.number,
                "state": t.state,
                "feasible": t.number in ok,
                "pareto_front": t.number in on_front,
                **{f"validation {m} ({d})": t.metrics.get(m) for m, d in objectives.items()},
                **{f"param {k}": v for k, v in t.params.items()},
                "note": t.note,
            }
        )
    return pd.DataFrame(rows)


def plot_front(
    trials: list[TrialView], front: list[TrialView], chosen: TrialView | None, objectives: dict[str, str], path: Path
) -> None:
    """The first objective against each other one: all trials, the feasible front, the choice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(objectives)
    pairs = [(keys[0], other) for other in keys[1:]] or [(keys[0], keys[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    done = [t for t in trials if t.state == "complete"]
    for ax, (y, x) in zip(axes[0], pairs, strict=True):
        ax.scatter([t.metrics.get(x) for t in done], [t.metrics.get(y) for t in done], c="#b0b7c0", label="trials")
        ax.scatter([t.metrics.get(x) for t in front], [t.metrics.get(y) for t in front], c="#1f6feb", label="feasible front")
        if chosen is not None:
            ax.scatter(
                [chosen.metrics.get(x)],
                [chosen.metrics.get(y)],
                marker="*",
                s=260,
                c="#d1242f",
                label=f"chosen (#{chosen.number})",
            )
        ax.set_xlabel(f"{x} ({objectives[x]}, validation)")
        ax.set_ylabel(f"{y} ({objectives[y]}, validation)")
        if x.endswith(("size_ratio", "speedup_rows_per_second")):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=8)
    fig.suptitle("stillroom search: trials on validation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
