"""``stillroom report RUN_ID``: one standalone HTML file a model-risk reviewer can read offline.

It answers, for one distillation run, the questions of the audit trail (docs/architecture.md) without MLflow
at hand: what model (card), did it pass the gate and why, does it hold what its compliance
profile asks, how teacher, student and the
no-teacher baseline compare (with intervals), the plots, the lineage (datasets with digests,
the teacher), who promoted the registered version, when, why and with what override, and the
environment. Everything is inside the file: styles inline, plots as base64 PNG, no script and
no network request, so it can be attached to a review ticket or archived as is.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt

from .. import tracking
from .._runtime import package_version
from ..contract.names import COMPLETE, COMPLIANCE_MISSING_TAG, COMPLIANCE_TAG, INCOMPLETE, ROLES
from ..distillation.evaluation import not_estimable_rows
from ..errors import StillroomError
from ..scratch import scratch_dir
from ..tasks.judging import scored_roles
from .modelcard import constraint_misses
from .summary import verdict

SUMMARY_PREFIXES = ("retention.", "gain.", "fidelity.")
CI_SUFFIXES = (".ci_low", ".ci_high")
EFFICIENCY_FIELDS = (
    "n_parameters",
    "size_bytes",
    "latency_p50_ms",
    "latency_p99_ms",
    "rows_per_second",
    "cpu_seconds_per_million",
)


def write_report(run_id: str, output: Path | None = None) -> Path:
    """Render the report for ``run_id`` into ``output`` (atomically); return the path written."""
    output = Path(output or f"stillroom-report-{run_id[:8]}.html")
    if output.exists() and output.is_dir():
        raise StillroomError(f"report output {output} is a directory; name a file, e.g. {output / 'report.html'}")
    if not output.parent.exists():
        raise StillroomError(f"report output directory {output.parent} does not exist")
    with scratch_dir("report") as tmp:
        source = tracking.fetch_report_source(run_id, Path(tmp))
        html = render(context(source))
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, output)  # a reader never sees half a report
    return output


def render(ctx: dict[str, Any]) -> str:
    env = Environment(loader=PackageLoader("stillroom.audit", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = format_number
    return env.get_template("report.html.j2").render(**ctx)


def context(src: tracking.ReportSource) -> dict[str, Any]:
    """The view of one run: plain values and lists, so the template only lays them out."""
    art = src.artifact_dir
    metrics = src.record.metrics
    gate = _json(art / "gate.json") or {"status": src.record.tags.get("stillroom.gate", "unknown"), "rules": []}
    card_md = (art / "model_card.md").read_text() if (art / "model_card.md").exists() else ""
    return {
        "title": f"Compliance report: {src.run_name}",
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "stillroom_version": package_version("stillroom"),
        "run": {
            "id": src.run_id,
            "name": src.run_name,
            "experiment": src.experiment,
            "status": src.status,
            "user": src.user,
            "started": _time(src.start_time_ms),
            "ended": _time(src.end_time_ms),
            "tracking_uri": _redact_uri(src.tracking_uri),
            "task": src.record.tags.get("stillroom.task", ""),
        },
        "gate": gate,
        "compliance": compliance_view(src.record.tags),
        "performance": performance_table(metrics),
        "summary": [
            {"metric": k, "value": v, "interval": _interval(metrics, k)}
            for k, v in sorted(metrics.items())
            if k.startswith(SUMMARY_PREFIXES) and not k.endswith((".ci_low", ".ci_high"))
        ],
        "retention_gain": retention_gain_table(metrics),
        "not_estimable": not_estimable_rows(gate.get("not_estimable") or {}),
        "data_quality": data_quality_view(_json(art / "data_quality.json")),
        "efficiency": efficiency_table(metrics),
        "card_html": MarkdownIt("commonmark").enable("table").render(card_md) if card_md else "",
        "plots": _plots(art),
        "search": (search := _json(art / "search" / "search.json")),
        "search_missed": constraint_misses((search or {}).get("constraints_missed") or {}),
        "datasets": sorted(src.record.datasets, key=lambda d: d["context"]),
        "teacher": (_json(art / "lineage.json") or {}).get("teacher", {}),
        "teacher_models": src.teacher_models,
        "lineage": {k: v for k, v in (_json(art / "lineage.json") or {}).items() if k not in ("teacher", "features")},
        "config": (art / "config.yaml").read_text() if (art / "config.yaml").exists() else "",
        "registered": src.registered,
        "environment": _json(art / "environment.json") or {},
        "manifest": _manifest(art),
    }


def compliance_view(tags: dict[str, str]) -> dict[str, Any]:
    """The compliance check recorded when the run was logged: ``complete``, ``incomplete`` with
    its gaps, or ``unchecked`` (a run logged before stillroom checked at run time)."""
    status = tags.get(COMPLIANCE_TAG, "unchecked")
    badge = {COMPLETE: "passed", INCOMPLETE: "failed"}.get(status, "unknown")  # the gate's colours
    return {"status": status, "badge": badge, "missing": [g for g in tags.get(COMPLIANCE_MISSING_TAG, "").split("; ") if g]}


def performance_table(metrics: dict[str, float]) -> dict[str, Any]:
    """Teacher, student, baseline: every metric all of them have, each with its interval if logged.
    A run judged against its teacher's outputs has student scores only (no baseline, and the
    teacher is the reference): then the table has the student's column alone."""
    roles = tuple(scored_roles(metrics, ROLES))
    scored = [{k.split(".", 1)[1] for k in metrics if k.startswith(f"{r}.")} for r in roles]
    names = sorted(n for n in set.intersection(*scored) if not n.endswith((".ci_low", ".ci_high"))) if scored else []
    rows = []
    for name in names:
        cells = {role: {"value": metrics[f"{role}.{name}"], "interval": _interval(metrics, f"{role}.{name}")} for role in roles}
        rows.append({"metric": name, **cells})
    return {"roles": roles, "rows": rows}


def retention_gain_table(metrics: dict[str, float]) -> list[dict[str, Any]]:
    """One row per metric with a retention or a gain: the three models' values, retention, the
    gain over the baseline with its paired interval and what that interval supports."""
    names = sorted({k.split(".", 1)[1] for k in metrics if k.startswith(("retention.", "gain.")) and not k.endswith(CI_SUFFIXES)})
    rows = []
    for name in names:
        low, high = metrics.get(f"gain.{name}.ci_low"), metrics.get(f"gain.{name}.ci_high")
        rows.append(
            {
                "metric": name,
                **{role: metrics.get(f"{role}.{name}") for role in ROLES},
                "retention": metrics.get(f"retention.{name}"),
                "gain": metrics.get(f"gain.{name}"),
                "interval": _interval(metrics, f"gain.{name}"),
                "verdict": verdict((low, high)).strip("()") if low is not None and high is not None else "",
            }
        )
    return rows


def data_quality_view(record: dict[str, Any] | None) -> dict[str, Any]:
    """The data guards' record (``data_quality.json``), or ``unrecorded`` for an older run."""
    if not record:
        return {"recorded": False, "status": "unrecorded", "badge": "unknown"}
    badge = {"clean": "passed", "warnings": "unknown", "error": "failed"}.get(record.get("status", ""), "unknown")
    return {"recorded": True, "badge": badge, **record}


def efficiency_table(metrics: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {"model": role, **{f: metrics.get(f"efficiency.{role}.{f}") for f in EFFICIENCY_FIELDS}}
        for role in ROLES
        if f"efficiency.{role}.rows_per_second" in metrics
    ]


def format_number(value: Any) -> str:
    """Counts with separators, ratios and scores to four significant digits."""
    if value is None or value == "":
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _interval(metrics: dict[str, float], key: str) -> str:
    low, high = metrics.get(f"{key}.ci_low"), metrics.get(f"{key}.ci_high")
    return f"[{low:.4f}, {high:.4f}]" if low is not None and high is not None else ""


def _plots(art: Path) -> list[dict[str, str]]:
    """Every PNG the run logged, embedded, named after its file."""
    return [
        {
            "name": p.stem.replace("_", " "),
            "path": str(p.relative_to(art)),
            "data": base64.b64encode(p.read_bytes()).decode("ascii"),
        }
        for p in sorted(art.rglob("*.png"))
    ]


def _manifest(art: Path) -> list[dict[str, str]]:
    manifest = _json(art / "manifest.json") or {}
    entries = [{"file": k, "sha256": v.get("sha256", "")} for k, v in manifest.get("artifacts", {}).items()]
    entries += [{"file": f"model/{k}", "sha256": v} for k, v in manifest.get("model_files", {}).items()]
    return entries


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _time(ms: int | None) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else ""


def _redact_uri(uri: str) -> str:
    """A tracking URI without credentials (a report is shared; passwords must not travel with it)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password:
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return uri
