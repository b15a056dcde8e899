"""Model card (Mitchell et al. 2019, "Model Cards for Model Reporting") as JSON and Markdown.

The JSON is for machines (a registry crawler, a diff between versions); the Markdown is what
a model-risk reviewer reads in the MLflow UI. Both come from one dictionary so they never
disagree.
"""

from __future__ import annotations

from typing import Any

SECTIONS = (
    ("model_details", "Model details"),
    ("intended_use", "Intended use"),
    ("factors", "Factors"),
    ("metrics", "Metrics"),
    ("evaluation_data", "Evaluation data"),
    ("training_data", "Training data"),
    ("quantitative_analyses", "Quantitative analyses"),
    ("gate", "Release gate"),
    ("ethical_considerations", "Ethical considerations"),
    ("caveats_and_recommendations", "Caveats and recommendations"),
)


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: one heading per Mitchell et al. section, tables for results."""
    lines = [f"# Model card: {card.get('title', 'stillroom student')}", ""]
    for key, heading in SECTIONS:
        if key not in card:
            continue
        lines += [f"## {heading}", "", *_render(card[key]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _render(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and value.get("table"):
        return _table(value["table"], value.get("columns"))
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if isinstance(v, dict) and v.get("table"):
                out += [f"**{k}**", "", *_table(v["table"], v.get("columns")), ""]
            elif isinstance(v, (list, tuple)):
                out += [f"- **{k}**:", *[f"  - {item}" for item in v]]
            else:
                out.append(f"- **{k}**: {v}")
        return out
    if isinstance(value, (list, tuple)):
        return [f"- {item}" for item in value]
    return [str(value)]


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> list[str]:
    if not rows:
        return ["(none)"]
    cols = columns or list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        out.append("| " + " | ".join(_cell(row.get(c, "")) for c in cols) + " |")
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")
