"""Model card (Mitchell et al. 2019, "Model Cards for Model Reporting") as JSON and Markdown.

The JSON is for machines (a registry crawler, a diff between versions); the Markdown is what
a model-risk reviewer reads in the MLflow UI. Both come from one dictionary so they never
disagree.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._runtime import package_version
from ..contract.names import output_metric_key
from ..contract.protocols import ModelDescription
from ..distillation.evaluation import not_estimable_rows, results_table
from ..tasks import measures, types
from ..tasks.judging import judged_roles
from ..tasks.kinds import has_scalar_output
from ..tasks.types import TABLE_METRICS

if TYPE_CHECKING:
    from ..distillation.result import Distillation

EFFICIENCY = ("n_parameters", "size_bytes", "latency_p50_ms", "latency_p99_ms", "rows_per_second", "cpu_seconds_per_million")

SECTIONS = (
    ("model_details", "Model details"),
    ("intended_use", "Intended use"),
    ("factors", "Factors"),
    ("metrics", "Metrics"),
    ("evaluation_data", "Evaluation data"),
    ("training_data", "Training data"),
    ("data_quality", "Data quality"),
    ("quantitative_analyses", "Quantitative analyses"),
    ("gate", "Release gate"),
    ("how_chosen", "How this student was chosen"),
    ("ethical_considerations", "Ethical considerations"),
    ("caveats_and_recommendations", "Caveats and recommendations"),
)


def build_card(d: Distillation) -> dict[str, Any]:
    """The Mitchell et al. sections filled from a distillation; the vertical's ``TaskSpec.card``
    supplies the domain text (intended use, factors, ethics, caveats)."""
    task, cfg, bundle, result = d.task, d.config, d.bundle, d.result
    ev = cfg.evaluation
    roles = list(d.efficiency)
    judged = judged_roles(bundle.reference, roles)
    return {
        "title": f"{cfg.run.registered_model} ({task.name})",
        "model_details": {
            "task": f"{task.name}: {task.description}",
            "student": describe_model(d.student.describe()),
            "teacher": describe_model(d.teacher.description),
            "baseline": BASELINE[bundle.reference],
            "recipe": _recipe(d),
            "stillroom version": package_version("stillroom"),
            "date": time.strftime("%Y-%m-%d"),
        },
        "intended_use": task.card.get("intended_use", task.description),
        "factors": task.card.get("factors", f"subgroup column: {bundle.group or 'none'}"),
        "metrics": {
            "reference": REFERENCE[bundle.reference],
            **_operating_point(d),
            "intervals": f"{ev.ci_level:.0%} percentile bootstrap, {ev.bootstrap} resamples of the test split",
            "definitions": task.card.get("metrics", types.DEFINITIONS[bundle.task_type]),
            **_covered_outputs(d),
        },
        "evaluation_data": {"split": "test", "rows": len(bundle.test), "source": bundle.source},
        "training_data": {"labelled rows": _labelled_rows(d), "transfer set": d.transfer.composition(), "source": bundle.source},
        "data_quality": _data_quality(d),
        "quantitative_analyses": {
            "performance": {
                "table": results_table(list(TABLE_METRICS[bundle.task_type]), result.metrics, result.intervals, judged)
            },
            "retention, gain and fidelity": {
                "table": [
                    {"metric": k, "value": v, f"{ev.ci_level:.0%} interval": _interval(result.intervals.get(k))}
                    for k, v in result.metrics.items()
                    if k.startswith(("retention.", "gain.", "fidelity."))
                ]
            },
            **({"per output": {"table": per_output}} if (per_output := _per_output_table(d, judged)) else {}),
            **_not_estimable(d),
            "efficiency": {"table": [{"model": role, **{k: d.efficiency[role][k] for k in EFFICIENCY}} for role in roles]},
            "how efficiency was measured": _efficiency_method(cfg.evaluation.efficiency_cores),
        },
        "gate": {"status": d.gate.verdict(), "rules": d.gate.reasons()},
        **({"how_chosen": how_chosen(d.selection)} if d.selection else {}),
        "ethical_considerations": task.card.get("ethical_considerations", "See the vertical's documentation."),
        "caveats_and_recommendations": _caveats(d),
    }


BASELINE = {
    "labels": "same student architecture and settings, trained on hard labels only (no teacher)",
    "teacher": "none: the data has no labels for a student without the teacher to learn from",
}
REFERENCE = {
    "labels": "the data's labels: teacher, student and baseline are each judged against them",
    "teacher": (
        "the teacher's outputs (the data has no labels): its values for value outputs, its calls at 0.5 for "
        "yes/no outputs; every student metric measures fidelity to the teacher, and the teacher is not judged"
    ),
}


def _recipe(d: Distillation) -> str:
    recipe = f"response-based distillation, temperature {d.config.recipe.temperature}"
    if d.bundle.reference == "teacher":
        return f"{recipe}, on the teacher's outputs alone (no labels to blend in: alpha has no effect)"
    return f"{recipe}, alpha {d.config.recipe.alpha}"


def _labelled_rows(d: Distillation) -> int | str:
    if d.bundle.reference == "teacher":
        return f"none: the train split's {len(d.bundle.train):,} rows are labelled by the teacher"
    return len(d.bundle.train)


def _metric_groups(d: Distillation) -> list[tuple[measures.OutputGroup, list[str]]]:
    """The output groups whose metrics a reviewer must map to outputs (with the outputs' names):
    every group of a task with several outputs, except multiclass (one label, one set of metrics)."""
    bundle = d.bundle
    if not types.reports_per_output(bundle.task_type, bundle.n_outputs):
        return []
    groups = measures.output_groups(bundle.task_type, bundle.output_types)
    return [(g, g.names(bundle.output_names)) for g in groups]


def _covered_outputs(d: Distillation) -> dict[str, Any]:
    """Which outputs each metric family covers, so that an unsuffixed ``rmse`` on a panel is
    never ambiguous: the macro mean over the outputs named, or that one output's value."""
    covered = {}
    for group, names in _metric_groups(d):
        metric_names = ", ".join(m.name for m in measures.METRICS[group.kind])
        how = "macro mean over" if len(names) > 1 else "computed on"
        covered[metric_names] = f"{how} {', '.join(names)}"
    return {"outputs covered": covered} if covered else {}


def _per_output_table(d: Distillation, roles: list[str]) -> list[dict[str, Any]]:
    """One row per output and metric with every model's value: a panel's endpoints one by one
    (the performance table shows each metric family's macro mean)."""
    rows = []
    values = d.result.metrics
    for group, names in _metric_groups(d):
        for name in names:
            for m in measures.METRICS[group.kind]:
                if m.per_output is None:
                    continue
                row: dict[str, Any] = {"output": name, "metric": m.name}
                for role in roles:
                    key = output_metric_key(role, m.name, name, d.bundle.n_outputs)
                    if key in values:
                        row[role] = f"{values[key]:.4f}"
                rows.append(row)
    return rows


def _operating_point(d: Distillation) -> dict[str, Any]:
    """How decisions are made, and which figures hold where: every operating point the
    evaluators used, with each model's threshold and the metrics computed there (with their
    intervals); the top class or the raw values when no threshold is fixed."""
    decision = {} if has_scalar_output(d.bundle.task_type) else {"decision": types.decision_rule(d.bundle.task_type)}
    if not d.result.operating_points:
        return decision
    points = {}
    for point in d.result.operating_points:
        entry: dict[str, Any] = {"rule": point.rule}
        if point.thresholds:
            entry["thresholds"] = {k: round(v, 6) for k, v in point.thresholds.items()}
        if rows := _point_metrics(d, point.metrics):
            entry["metrics at this point"] = {"table": rows}
        points[point.name] = entry
    return decision | {"operating points": points}


def _point_metrics(d: Distillation, names: list[str]) -> list[dict[str, Any]]:
    """One row per metric: each model's value with its interval (``fidelity.*``: the student's
    against the teacher, and the baseline's for contrast)."""
    values, intervals = d.result.metrics, d.result.intervals
    rows = []
    for name in names:
        if name.startswith("fidelity."):
            keys = {"student": name, "baseline": f"baseline_{name}"}
        else:
            keys = {role: f"{role}.{name}" for role in d.efficiency}
        row: dict[str, Any] = {"metric": name}
        for role, key in keys.items():
            if key in values:
                row[role] = _value(values[key], intervals.get(key))
        if len(row) > 1:
            rows.append(row)
    return rows


def _efficiency_method(cores: int | str) -> str:
    """How to read the efficiency table: per core by default (efficiency.json has every round)."""
    if cores == "all":
        return "teacher, student and baseline timed interleaved in wall seconds, each with its own threads on every CPU"
    return (
        f"teacher, student and baseline timed interleaved on {cores} core(s), every thread pool capped to as many "
        "threads: times on a core of their own (wall time minus the wait for the CPU, where Linux reports it), so ratios "
        "compare the models' cost per core; efficiency.json has every round, the CPU used and the wall seconds"
    )


def _not_estimable(d: Distillation) -> dict[str, Any]:
    """The metrics computed on fewer events than ``evaluation.min_events``: their values are in
    the tables above, but a reviewer must not read them as evidence (a gate rule on one fails)."""
    rows = not_estimable_rows(d.result.not_estimable)
    if not rows:
        return {}
    return {f"not estimable (fewer than evaluation.min_events = {d.config.evaluation.min_events} events)": {"table": rows}}


def _value(value: float, bounds: tuple[float, float] | None) -> str:
    return f"{value:.4f}" + (f" {_interval(bounds)}" if bounds else "")


def _data_quality(d: Distillation) -> dict[str, Any]:
    """The data guards' findings and the events of each split (``data_quality.json`` has it all)."""
    quality = d.data_quality
    events = {name: _events(split) for name, split in quality.splits.items() if "rarest" in split}
    out: dict[str, Any] = {"status": quality.status, "findings": quality.summary_lines() or ["none"]}
    if events:
        out["events per split"] = events
    if quality.duplicates.get("rule"):
        dup = quality.duplicates
        out["duplicates"] = (
            f"{dup.get('groups', 0)} group(s) of duplicate inputs merged ({dup.get('rows_merged', 0)} rows), "
            f"{dup.get('conflicting', 0)} with conflicting labels; rule: {dup['rule']}"
        )
    return out


def _events(split: dict[str, Any]) -> str:
    rarest = split["rarest"]
    if rarest["class"] == "values":
        return f"{split['rows']:,} rows; fewest values: {rarest['count']:,} ({rarest['label']})"
    return f"{split['rows']:,} rows; rarest class: {rarest['count']:,} ({rarest['label']} = {rarest['class']})"


def _caveats(d: Distillation) -> list[str] | str:
    """The task's caveats and those of this run's data source (a user's real file never carries
    the embedded data's)."""
    general = d.task.card.get("caveats", "Re-validate before use on data from another population or period.")
    return [general, *d.bundle.caveats] if d.bundle.caveats else general


def how_chosen(selection: dict[str, Any]) -> dict[str, Any]:
    """The search behind this student (``stillroom search``): space, budget, trials, the front
    on validation and the choice with its rule; the test split was scored for this student only."""
    trials = selection["trials"]
    chosen = selection["chosen"]
    default = selection.get("default_trial")
    return {
        "search": f"study {selection['study']}, parent run {selection['parent_run_id']}; {selection['sampler']}",
        "space": {key: _dimension_text(dim) for key, dim in selection["space"].items()},
        "budget": {k: v for k, v in selection["budget"].items() if v is not None},
        "trials": (
            f"{trials['total']} trials: {trials['complete']} complete, {trials['pruned']} pruned, "
            f"{trials['failed']} failed; {trials['feasible']} met every constraint"
        ),
        "objectives (validation)": selection["objectives"],
        "constraints (validation)": selection["constraints"] or ["none"],
        **_misses(selection.get("constraints_missed") or {}),
        "Pareto front of the feasible trials (validation)": (
            {"table": selection["front"]} if selection["front"] else "empty: no trial met every constraint on validation"
        ),
        "choice": f"trial {chosen['trial']}: {chosen['why']}",
        **_against_default(selection.get("anchor") or {}),
        "chosen values": chosen["params"],
        **({"default student (trial 0, validation)": {k: v for k, v in default.items() if k != "trial"}} if default else {}),
        "test split": selection["test_split"],
    }


MISS_KINDS = (("inconclusive", "only inconclusive"), ("not_estimable", "not estimable"))


def constraint_misses(missed: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """The search record's per-constraint misses, most missed first, each with how many only as
    inconclusive or not estimable (``how``: ", 2 only inconclusive"): the card and the report
    show the same rows."""
    return [
        {
            "rule": rule,
            "missed": c["missed"],
            "how": "".join(f", {c[k]} {label}" for k, label in MISS_KINDS if c.get(k)),
        }
        for rule, c in sorted(missed.items(), key=lambda item: -item[1]["missed"])
    ]


def _misses(missed: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Which constraints cut the feasible trials, and whether for a worse student or for a split
    too small to tell (only inconclusive, or not estimable on too few events)."""
    rows = [f"{m['rule']}: {m['missed']} trial(s){m['how']}" for m in constraint_misses(missed)]
    return {"completed trials missing each constraint (validation)": rows} if rows else {}


def _against_default(anchoring: dict[str, Any]) -> dict[str, Any]:
    """The front trials compared with the default student (validation, paired), or why not; the
    constraints the default missed on validation only as inconclusive."""
    unsettled = anchoring.get("default_inconclusive")
    inconclusive = {"default student: constraints missed on validation only as inconclusive": unsettled} if unsettled else {}
    if anchoring.get("comparisons"):
        rows = [{k: c[k] for k in ("trial", "difference", "low", "high", "kept", "why")} for c in anchoring["comparisons"]]
        saturated = {"validation saturated": anchoring["saturated"]} if anchoring.get("saturated") else {}
        table = {f"front trials against the default student ({anchoring['metric']}, validation, paired)": {"table": rows}}
        return table | saturated | inconclusive
    return ({"default student as anchor": anchoring["note"]} if anchoring.get("note") else {}) | inconclusive


def _dimension_text(dim: dict[str, Any]) -> str:
    if "choices" in dim:
        text = "one of " + ", ".join(str(c) for c in dim["choices"])
    else:
        kind = "integers" if dim.get("integer") else "values"
        text = f"{kind} {dim['low']:g}..{dim['high']:g}" + (" (log scale)" if dim.get("log") else "")
    return text + (f" when {dim['when']}" if dim.get("when") else "")


def describe_model(desc: ModelDescription) -> dict[str, Any]:
    """A model description as a flat mapping for the card and the lineage record (unknown fields left out)."""
    fields = {"name": desc.name, "kind": desc.kind, "n_parameters": desc.n_parameters, "size_bytes": desc.size_bytes}
    fields |= {"uri": desc.uri, "version": desc.version, **desc.details}
    return {k: v for k, v in fields.items() if v is not None}


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: one heading per Mitchell et al. section, tables for results."""
    lines = [f"# Model card: {card.get('title', 'stillroom student')}", ""]
    for key, heading in SECTIONS:
        if key not in card:
            continue
        lines += [f"## {heading}", "", *_render(card[key]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _render(value: Any, indent: str = "") -> list[str]:
    """Text as is, ``{"table": rows}`` as a table, mappings and lists as (nested) bullets."""
    if isinstance(value, str):
        return [indent + value]
    if isinstance(value, dict) and value.get("table"):
        return _table(value["table"], value.get("columns"))
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if isinstance(v, dict) and v.get("table"):
                out += [f"**{k}**", "", *_table(v["table"], v.get("columns")), ""]
            elif isinstance(v, (dict, list, tuple)):
                out += [f"{indent}- **{k}**:", *_render(v, indent + "  ")]
            else:
                out.append(f"{indent}- **{k}**: {_cell(v)}")
        return out
    if isinstance(value, (list, tuple)):
        return [f"{indent}- {_cell(item)}" for item in value]
    return [indent + _cell(value)]


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> list[str]:
    if not rows:
        return ["(none)"]
    cols = columns or list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        out.append("| " + " | ".join(_cell(row.get(c, "")) for c in cols) + " |")
    return out


def _cell(value: Any) -> str:
    """Large numbers with thousands separators (bytes, rows), others to four significant digits."""
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _interval(bounds: tuple[float, float] | None) -> str:
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else ""
