"""Config resolution, the gate and the model card against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from stillroom.audit.modelcard import render_markdown
from stillroom.contract import config as cfg
from stillroom.distillation.gate import evaluate_gate
from stillroom.errors import ConfigError
from stillroom_fraud.config import FraudConfig

DEFAULT = Path(__import__("stillroom_fraud").__file__).with_name("default.yaml")


def test_resolution_order_default_user_overrides(tmp_path: Path) -> None:
    user = tmp_path / "run.yaml"
    user.write_text("recipe:\n  alpha: 0.4\nstudent:\n  params:\n    num_leaves: 15\n")
    c = cfg.resolve(FraudConfig, DEFAULT, user, ["recipe.temperature=2.5", "gate.rules=[]"])
    assert (c.recipe.alpha, c.recipe.temperature, c.gate.rules) == (0.4, 2.5, [])
    assert c.student.params == {"n_estimators": 100, "num_leaves": 15, "learning_rate": 0.15, "max_bin": 4095}
    assert "alpha: 0.4" in cfg.dump(c)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["recipe.alpah=1"], "unknown config field 'recipe.alpah'"),
        (["recipe.alpha=1.5"], "invalid config field 'recipe.alpha'"),
        (["teacher.uri=models:/x@y"], "set exactly one of teacher.name and teacher.uri"),
        (["gate.rules=['auc is big']"], "is not of the form 'metric >= number'"),
        (["noequals"], "is not of the form key=value"),
        (["data.dataset=fraud.table"], "data.path is required"),
    ],
)
def test_bad_configs_name_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cfg.resolve(FraudConfig, DEFAULT, None, overrides)


def test_gate_passes_only_when_every_rule_holds() -> None:
    metrics = {"fidelity.agreement": 0.995, "retention.average_precision": 0.97, "x": math.nan}
    ok = evaluate_gate(["fidelity.agreement >= 0.99"], metrics)
    assert ok.passed and ok.reasons() == ["PASS fidelity.agreement >= 0.99 (observed 0.995)"]
    bad = evaluate_gate(["fidelity.agreement >= 0.99", "retention.average_precision >= 0.99", "x > 0", "missing < 1"], metrics)
    assert not bad.passed and [r.passed for r in bad.rules] == [True, False, False, False]
    assert bad.reasons()[3] == "FAIL missing < 1 (observed missing)"


def test_model_card_markdown_sections_and_tables() -> None:
    md = render_markdown(
        {
            "title": "m",
            "model_details": {"student": "lgbm"},
            "quantitative_analyses": {"perf": {"table": [{"model": "student", "auc": 0.91234}]}},
        }
    )
    assert md.splitlines()[0] == "# Model card: m"
    assert "## Model details" in md and "| model | auc |" in md and "| student | 0.9123 |" in md


def test_model_card_renders_nested_sections_as_bullets_not_dict_dumps() -> None:
    md = render_markdown(
        {
            "model_details": {"teacher": {"name": "ensemble", "size_bytes": 152_772_215, "trees": [300, 300]}},
            "quantitative_analyses": {"efficiency": {"table": [{"model": "teacher", "size_bytes": 1.5e8, "ece": 0.00123456}]}},
        }
    )
    assert "{" not in md and "'" not in md
    assert "- **teacher**:\n  - **name**: ensemble\n  - **size_bytes**: 152,772,215\n  - **trees**:\n    - 300" in md
    assert "| teacher | 150,000,000 | 0.001235 |" in md
