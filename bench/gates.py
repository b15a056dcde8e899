"""The default gate's verdict per seed, as the bench reports show it (fraud, medical).

A bench that says only "gate: failed" cannot tell a student that loses to its baseline from a
rule that could not be estimated on this test set, so each seed's ``gate.json`` (every rule with
its kind, observed value, threshold and, when there is no verdict on a value, the reason) is
kept beside the run's metrics and rendered here the same way for every vertical: a per-seed
table of the failing rules, a rule-by-seed table of the observed values, and one summary line,
"k of n seeds pass; the others fail because ...".
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GateRecord = dict[str, Any]
"""A run's ``gate.json``: ``status``, ``rules`` (``rule, metric, observed, passed, kind, note,
threshold``) and ``not_estimable`` (metric -> why)."""


def fetch_json(run_id: str, artifact_path: str) -> Any:
    """A JSON artifact a run logged, read from the current tracking store (the bench's temporary
    one: call it before that store is thrown away), through a folder removed afterwards."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="stillroom-artifact-") as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=tmp)
        return json.loads(Path(path).read_text())


def fetch_gate(run_id: str) -> GateRecord:
    """The ``gate.json`` a distillation run logged."""
    return fetch_json(run_id, "gate.json")


def load_average() -> float:
    """The 1-minute load average (other helpers' jobs share the 2 cores: kept beside each timing)."""
    return os.getloadavg()[0]


def _op(rule: Mapping[str, Any]) -> str:
    """The comparison of a rule, from its text (``noninferior`` rules compare ``>=``)."""
    text = rule["rule"]
    if text.startswith("noninferior("):
        return ">="
    return next((op for op in (">=", "<=", "==", ">", "<") if op in text), "?")


def _not_estimable(rule: Mapping[str, Any]) -> bool:
    return (rule.get("note") or "").startswith("not estimable")


def _number(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4g}"


def failure_text(rule: Mapping[str, Any]) -> str:
    """One failing rule for a reviewer: ``noninferior(roc_auc): gain.roc_auc.ci_low -0.0132, needs >= -0.01``,
    or the reason there is no verdict on a value (``not estimable: 12 teacher alerts < 30``)."""
    needs = f"needs {_op(rule)} {_number(rule.get('threshold'))}"
    if _not_estimable(rule):
        return f"`{rule['rule']}`: {rule['note']} (observed {_number(rule.get('observed'))}, {needs})"
    return f"`{rule['rule']}`: {rule['metric']} {_number(rule.get('observed'))}, {needs}"


def failing(gate: GateRecord) -> list[Mapping[str, Any]]:
    return [r for r in gate.get("rules", []) if not r["passed"]]


def verdict_table(seeds: Sequence[tuple[int, GateRecord]]) -> list[str]:
    """Per seed: the verdict and every failing rule with observed vs threshold and reason."""
    lines = ["| seed | default gate | failing rules (observed, threshold, reason) |", "|---|---|---|"]
    for seed, gate in seeds:
        if not gate:
            lines.append(f"| {seed} | (gate not recorded) | |")
            continue
        why = "; ".join(failure_text(r) for r in failing(gate)) or "none"
        lines.append(f"| {seed} | {gate['status']} | {why} |")
    return lines


def rules_table(seeds: Sequence[tuple[int, GateRecord]]) -> list[str]:
    """Rule by seed: the observed value and the verdict, so a reader sees how close each seed came."""
    recorded = [(s, g) for s, g in seeds if g]
    if not recorded:
        return []
    order = list(dict.fromkeys(r["rule"] for _, g in recorded for r in g["rules"]))
    first = {r["rule"]: r for _, g in recorded for r in reversed(g["rules"])}
    lines = [
        "| rule | kind | threshold | " + " | ".join(f"seed {s}" for s, _ in recorded) + " |",
        "|---|---|---|" + "---|" * len(recorded),
    ]
    for text in order:
        rule = first[text]
        cells = []
        for _, gate in recorded:
            r = next((x for x in gate["rules"] if x["rule"] == text), None)
            if r is None:
                cells.append("")
                continue
            mark = "pass" if r["passed"] else ("**not estimable**" if _not_estimable(r) else "**FAIL**")
            cells.append(f"{_number(r.get('observed'))} {mark}")
        threshold = f"{_op(rule)} {_number(rule.get('threshold'))}"
        lines.append(f"| `{text}` | {rule.get('kind', '')} | {threshold} | " + " | ".join(cells) + " |")
    return lines


def summary_line(seeds: Sequence[tuple[int, GateRecord]]) -> str:
    """``k of n seeds pass the default gate; the others fail because <rule> (seeds ...)``."""
    recorded = [(s, g) for s, g in seeds if g]
    passed = [s for s, g in recorded if g["status"] == "passed"]
    line = f"{len(passed)} of {len(recorded)} seeds pass the default gate"
    causes: dict[str, list[int]] = {}
    for seed, gate in recorded:
        for r in failing(gate):
            cause = f"`{r['rule']}` " + ("is not estimable" if _not_estimable(r) else "fails")
            causes.setdefault(cause, []).append(seed)
    if not causes:
        return line + "."
    listed = "; ".join(f"{cause} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))})" for cause, s in causes.items())
    return f"{line}; {'the others fail' if passed else 'they fail'} because {listed}."


def gate_section(seeds: Sequence[tuple[int, GateRecord]]) -> list[str]:
    """The three views above, ready to paste into a report."""
    if not any(g for _, g in seeds):
        return []
    return [
        f"**{summary_line(seeds)}**",
        "",
        *verdict_table(seeds),
        "",
        "Every rule of the default gate, observed value per seed:",
        "",
        *rules_table(seeds),
    ]
