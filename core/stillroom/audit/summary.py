"""The result of a distillation on the console: the teacher / student / baseline table with
intervals, retention and gain, fidelity, efficiency, the gate with its reasons, the compliance
check with every gap, and where the student was registered."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ..contract.names import COMPLETE, ROLES
from ..distillation.evaluation import results_table
from ..tasks.judging import scored_roles
from ..tasks.kinds import DEFAULT_TASK_TYPE
from ..tasks.types import TABLE_METRICS

console = Console(markup=False, highlight=False, soft_wrap=True)  # the command's result: stdout, text as is


def _print_compliance(checked: dict[str, Any] | None) -> None:
    """The compliance check's result; each missing item on its own line, so it cannot be missed."""
    if not checked:
        return
    profiles = ", ".join(checked["profiles"])
    if checked["status"] == COMPLETE:
        console.print(f"compliance: complete (profiles {profiles})")
        return
    console.print(f"compliance: incomplete against profiles {profiles}; missing:", style="bold red")
    for kind, items in checked["missing"].items():
        console.print(f"  {kind}: {', '.join(items)}")


def retention_and_gain(values: dict[str, float], intervals: dict[str, Any]) -> list[str]:
    """One line per metric with a retention or a gain (every headline metric of the task, per
    output too): retention against the teacher, gain over the baseline with its paired interval,
    and whether the interval supports a gain, a loss, or neither."""
    names = sorted({k.split(".", 1)[1] for k in values if k.startswith(("retention.", "gain."))})
    lines = []
    for name in names:
        parts = []
        if f"retention.{name}" in values:
            parts.append(f"retention {values[f'retention.{name}']:.4f}")
        if f"gain.{name}" in values:
            bounds = intervals.get(f"gain.{name}")
            parts.append(
                f"gain {values[f'gain.{name}']:+.4f}"
                + (f" [{bounds[0]:+.4f}, {bounds[1]:+.4f}] {verdict(bounds)}" if bounds else "")
            )
        lines.append(f"{name}: " + ", ".join(parts))
    return lines


def verdict(bounds: Any) -> str:
    """What a paired interval of the gain over the baseline supports (never more than it does)."""
    low, high = float(bounds[0]), float(bounds[1])
    if low > 0:
        return "(better than the baseline)"
    if high < 0:
        return "(worse than the baseline)"
    return "(no difference shown)"


def print_summary(summary: dict[str, Any]) -> None:
    """The result as a table a person can read."""
    values, intervals = summary["metrics"], summary["intervals"]
    roles = scored_roles(values, ROLES)
    against = "" if summary.get("reference", "labels") == "labels" else ", judged against the teacher's outputs"
    table = Table(title=f"{summary['task']}: {' vs '.join(roles)} (test split{against})")
    task_type = summary.get("task_type", DEFAULT_TASK_TYPE)
    names = list(TABLE_METRICS[task_type])
    table.add_column("model")
    for n in names:
        table.add_column(n)
    for row in results_table(names, values, intervals, roles):
        table.add_row(row["model"], *[row.get(n, "") for n in names])
    console.print(table)
    for line in retention_and_gain(values, intervals):
        console.print(f"  {line}")
    for key in (
        *sorted(k for k in values if k.startswith("fidelity.")),
        "efficiency.speedup_rows_per_second",
        "efficiency.speedup_latency",
        "efficiency.size_ratio",
    ):
        if key in values:
            console.print(f"  {key}: {values[key]:.4f}")
    console.print(f"gate: {summary['gate_verdict']}", style="bold")
    for reason in summary["gate_reasons"]:
        console.print(f"  {reason}")
    for name, why in sorted(summary.get("not_estimable", {}).items()):
        console.print(f"  not estimable: {name} ({why})")
    _print_compliance(summary.get("compliance"))
    if summary.get("version"):
        console.print(f"registered: models:/{summary['registered_model']}/{summary['version']} (run {summary['run_id']})")
