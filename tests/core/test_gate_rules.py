"""Gate rules: the grammar, their kinds, placeholders written out per task type, non-inferiority
against the paired interval, not-estimable metrics, and the check against the data that refuses
a rule before any work. Every default gate has one rule of each kind."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import config as cfg
from stillroom.contract.bundle import DataBundle
from stillroom.contract.config import GateConfig
from stillroom.contract.names import output_metric_key
from stillroom.contract.rules import expand_rules, parse_rule
from stillroom.distillation.applicability import check_rules, generic_reports
from stillroom.distillation.gate import evaluate_gate
from stillroom.errors import ConfigError
from stillroom.metrics import NonInferiorityPower
from stillroom_fraud.config import FraudConfig
from stillroom_medical.config import MedicalConfig
from stillroom_medical.plugin import stillroom_evaluators as medical_evaluators
from stillroom_molecules.config import MoleculesConfig

VERTICALS = {
    "fraud": (FraudConfig, "stillroom_fraud", "binary"),
    "medical": (MedicalConfig, "stillroom_medical", "binary"),
    "molecules": (MoleculesConfig, "stillroom_molecules", "regression"),
}


def _default(vertical: str, overrides: list[str] | None = None) -> cfg.DistillConfig:
    model, package, _ = VERTICALS[vertical]
    return cfg.resolve(model, Path(__import__(package).__file__).with_name("default.yaml"), None, overrides or [])


def _bundle(
    task_type: str = "binary", reference: str = "labels", labels: list[str] | None = None, **details: object
) -> DataBundle:
    """A small real bundle: what the applicability check reads is its task type, reference, outputs."""
    rng = np.random.default_rng(0)
    labels = labels or ["y"]
    frame = pd.DataFrame({"x": rng.normal(size=60)})
    for name in labels:
        frame[name] = rng.integers(0, 2, 60) if task_type != "regression" else rng.normal(size=60)
    return DataBundle(
        train=frame,
        validation=frame,
        test=frame,
        features=["x"],
        label=labels[0] if len(labels) == 1 else labels,
        task_type=task_type,
        reference=reference,
        details=dict(details),
    )


def test_the_two_forms_and_their_kinds() -> None:
    r = parse_rule("noninferior(roc_auc, 0.02)")
    assert (r.metric, r.op, r.threshold, r.margin, r.kind) == ("gain.roc_auc.ci_low", ">=", -0.02, 0.02, "non-inferiority")
    default = parse_rule("noninferior(rmse)")
    assert default.threshold is None and default.resolved(0.05).threshold == -0.05
    assert parse_rule("gain.roc_auc.ci_low >= -0.01").kind == "non-inferiority"
    assert parse_rule("gain.roc_auc.ci_low >= -0.01").base_metric == "gain.roc_auc"
    kinds = [
        parse_rule(t).kind for t in ("retention.r2 >= 0.9", "fidelity.alert_overlap >= 0.8", "efficiency.size_ratio <= 0.05")
    ]
    assert kinds == ["retention", "fidelity", "efficiency"]
    assert parse_rule("student.worst_subgroup_sensitivity >= 0.7").kind == "quality"
    for bad in ("auc is big", "noninferior()", "noninferior(roc_auc, -0.1)", "retention.{best} >= 1"):
        with pytest.raises(ValueError):
            parse_rule(bad)


def test_noninferiority_reads_the_lower_bound_of_the_paired_gain_interval() -> None:
    metrics = {"gain.roc_auc.ci_low": -0.004, "gain.average_precision.ci_low": -0.031, "gain.rmse.ci_low": -0.04}
    gate = GateConfig(
        rules=[
            "noninferior(roc_auc)",
            "noninferior(average_precision)",
            "noninferior(average_precision, 0.05)",
            "noninferior(rmse)",
        ],
        non_inferiority_margin={"rmse": 0.05, "default": 0.01},
    )
    result = evaluate_gate(gate, metrics)
    assert [r.passed for r in result.rules] == [True, False, True, True]
    assert result.reasons()[1] == "FAIL noninferior(average_precision) (gain.average_precision.ci_low >= -0.01; observed -0.031)"
    assert evaluate_gate(GateConfig(rules=["noninferior(roc_auc)"]), {}).reasons() == [
        "FAIL noninferior(roc_auc) (gain.roc_auc.ci_low >= -0.01; observed missing)"
    ]


def test_a_noninferiority_failure_from_an_interval_wider_than_the_margin_says_it_is_inconclusive() -> None:
    # a small test set: gain +0.004 with interval [-0.011, +0.019] is as consistent with "equal" as with "worse"
    wide = {"gain.roc_auc": 0.004, "gain.roc_auc.ci_low": -0.011, "gain.roc_auc.ci_high": 0.019}
    reason = evaluate_gate(["noninferior(roc_auc)"], wide).reasons()[0]
    assert reason.startswith("FAIL noninferior(roc_auc) (gain.roc_auc.ci_low >= -0.01; inconclusive: ")
    assert "[-0.011, 0.019] holds 0 and is wider than the margin (+/-0.015 > 0.01)" in reason
    # what would decide it: se = 0.015 / 1.96; an equal student passes with P = Phi(0.01 / se - 1.96)
    assert (
        "on these test rows a student exactly as good as its baseline passes about 26% of the time: "
        "80% would need about 4.6x as many test rows, or a margin of 0.021" in reason
    )
    assert reason.endswith("observed -0.011)")
    # wide but wholly below 0: the student is worse, the test set was big enough to say so
    worse = {"gain.roc_auc.ci_low": -0.2, "gain.roc_auc.ci_high": -0.001}
    assert "inconclusive" not in evaluate_gate(["noninferior(roc_auc)"], worse).reasons()[0]
    # a narrow interval below the margin: the student is worse, nothing inconclusive about it
    narrow = {"gain.roc_auc.ci_low": -0.03, "gain.roc_auc.ci_high": -0.02}
    assert "inconclusive" not in evaluate_gate(["noninferior(roc_auc)"], narrow).reasons()[0]
    passing = {"gain.roc_auc.ci_low": -0.005, "gain.roc_auc.ci_high": 0.03}
    assert "inconclusive" not in evaluate_gate(["noninferior(roc_auc)"], passing).reasons()[0]


def test_a_rule_on_a_metric_from_too_few_events_fails_with_the_reason_not_the_value() -> None:
    metrics = {"fidelity.alert_overlap": 1.0, "retention.roc_auc": 0.99, "gain.roc_auc.ci_low": 0.0}
    not_estimable = {
        "fidelity.alert_overlap": "2 teacher alerts at the operating point < 30",
        "gain.roc_auc": "12 test positives < 30",
    }
    result = evaluate_gate(
        ["fidelity.alert_overlap >= 0.8", "noninferior(roc_auc)", "retention.roc_auc >= 0.95"], metrics, not_estimable
    )
    assert [r.passed for r in result.rules] == [False, False, True]
    assert result.reasons()[0] == (
        "FAIL fidelity.alert_overlap >= 0.8 (not estimable: 2 teacher alerts at the operating point < 30; observed 1)"
    )
    assert "not estimable: 12 test positives < 30" in result.reasons()[1]  # a bound of a metric on too few events
    assert evaluate_gate(["x > 0"], {"x": math.nan}).reasons() == ["FAIL x > 0 (observed missing)"]


def test_placeholders_are_written_out_for_the_task_type_and_every_output() -> None:
    rules = ["retention.{headline} >= 0.9", "noninferior({headline})", "fidelity.{fidelity} >= 0.8"]
    assert expand_rules(rules, "binary", None, ["y"]) == [
        "retention.roc_auc >= 0.9",
        "retention.average_precision >= 0.9",
        "noninferior(roc_auc)",
        "noninferior(average_precision)",
        "fidelity.alert_overlap >= 0.8",
    ]
    regression = expand_rules(rules[:1], "regression", None, ["logS", "logP"])
    assert regression == [f"retention.{m} >= 0.9" for m in ("rmse", "r2", "rmse.logS", "rmse.logP", "r2.logS", "r2.logP")]
    mixed = expand_rules(["noninferior({headline})"], "mixed", ["regression", "binary"], ["logD", "hERG"])
    assert "noninferior(rmse.logD)" in mixed and "noninferior(roc_auc.hERG)" in mixed and "noninferior(rmse.hERG)" not in mixed
    assert expand_rules(rules[2:], "multiclass", None, ["a", "b", "c"]) == ["fidelity.agreement >= 0.8"]


@pytest.mark.parametrize("vertical", sorted(VERTICALS))
def test_every_default_gate_judges_against_both_references_and_passes_the_data_check(vertical: str) -> None:
    config = _default(vertical)
    task_type = VERTICALS[vertical][2]
    rules = expand_rules(config.gate.rules, task_type, None, ["y"])
    kinds = {parse_rule(r).kind for r in rules}
    assert {"retention", "non-inferiority", "fidelity", "efficiency"} <= kinds, rules
    retained = {parse_rule(r).metric for r in rules if parse_rule(r).kind == "retention"}
    noninferior = {parse_rule(r).compared for r in rules if parse_rule(r).noninferior}
    headline = {"binary": {"roc_auc", "average_precision"}, "regression": {"rmse", "r2"}}[task_type]
    assert {f"retention.{m}" for m in headline} <= retained and headline <= noninferior
    check_rules(rules, config, _bundle(task_type), [_generic()])  # no error: every rule can apply


def _generic():  # type: ignore[no-untyped-def]
    from stillroom.contract.specs import EvaluatorSpec

    return EvaluatorSpec("core.generic", "*", lambda ctx: None, reports=generic_reports)  # type: ignore[arg-type,return-value]


def test_the_medical_default_has_no_subgroup_rule_and_a_subgroup_rule_needs_metadata() -> None:
    config = _default("medical")
    assert not [r for r in config.gate.rules if "subgroup" in r]
    evaluators = [_generic(), *medical_evaluators()]
    no_metadata = _bundle("binary")
    check_rules(expand_rules(config.gate.rules, "binary", None, ["y"]), config, no_metadata, evaluators)
    subgroup = ["student.worst_subgroup_sensitivity >= 0.7"]
    with pytest.raises(ConfigError, match=r"gate rule 'student.worst_subgroup_sensitivity >= 0.7' cannot apply.*metadata_csv"):
        check_rules(subgroup, config, no_metadata, evaluators)
    check_rules(subgroup, config, _bundle("binary", metadata_columns=["site"]), evaluators)  # with metadata it applies


def test_rules_the_data_cannot_produce_are_refused_with_what_would_make_them_apply() -> None:
    config = _default("molecules")
    evaluators = [_generic()]
    with pytest.raises(ConfigError, match=r"gain.rmse needs the no-teacher baseline.*give the data labels, or drop the rule"):
        check_rules(["noninferior(rmse)"], config, _bundle("regression", reference="teacher"), evaluators)
    with pytest.raises(ConfigError, match=r"retention.rmse needs the teacher judged against labels"):
        check_rules(["retention.rmse >= 0.9"], config, _bundle("regression", reference="teacher"), evaluators)
    check_rules(["student.rmse <= 1.0", "fidelity.r2 >= 0.8"], config, _bundle("regression", reference="teacher"), evaluators)
    no_bootstrap = _default("molecules", ["evaluation.bootstrap=0"])
    with pytest.raises(ConfigError, match=r"evaluation.bootstrap is 0; set it > 0"):
        check_rules(["noninferior(rmse)"], no_bootstrap, _bundle("regression"), evaluators)
    with pytest.raises(ConfigError, match=r"no evaluator of a binary molecules run reports 'retention.rmse'"):
        check_rules(["retention.rmse >= 0.9"], config, _bundle("binary"), evaluators)
    with pytest.raises(ConfigError, match=r"reports 'fidelity.alert_overlap'"):
        check_rules(["fidelity.alert_overlap >= 0.8"], config, _bundle("regression"), evaluators)


def test_rules_on_outputs_named_from_a_users_columns_parse_and_find_their_metrics() -> None:
    # SIDER's organ classes hold spaces and commas; metric keys keep the spaces, commas become "_"
    outputs = ["Hepatobiliary disorders", "Injury, poisoning and procedural complications"]
    rules = expand_rules(["noninferior({headline})", "retention.{headline} >= 0.9"], "multilabel", None, outputs)
    assert "noninferior(roc_auc.Injury_ poisoning and procedural complications)" in rules
    metrics = {}
    for output in outputs:
        metrics[output_metric_key("gain", "roc_auc", output, 2) + ".ci_low"] = -0.001
        metrics[output_metric_key("gain", "average_precision", output, 2) + ".ci_low"] = -0.05
        metrics[output_metric_key("retention", "roc_auc", output, 2)] = 0.95
        metrics[output_metric_key("retention", "average_precision", output, 2)] = 0.95
    metrics |= {"gain.roc_auc.ci_low": 0.0, "gain.average_precision.ci_low": 0.0}
    metrics |= {"retention.roc_auc": 0.95, "retention.average_precision": 0.95}
    result = {r.rule: r for r in evaluate_gate(rules, metrics).rules}
    assert result["noninferior(roc_auc.Hepatobiliary disorders)"].passed
    assert result["retention.roc_auc.Injury_ poisoning and procedural complications >= 0.9"].passed
    failed = result["noninferior(average_precision.Hepatobiliary disorders)"]
    assert not failed.passed and failed.observed == -0.05  # found, not "observed missing"


def test_an_inconclusive_reason_states_the_intervals_level_and_the_rows_it_was_judged_on() -> None:
    # a search trial judges on validation, with 90% intervals: z = 1.645, not 1.96
    wide = {"gain.average_precision.ci_low": -0.02, "gain.average_precision.ci_high": 0.01}
    (rule,) = evaluate_gate(["noninferior(average_precision)"], wide, level=0.9, split="validation").rules
    assert rule.inconclusive and not rule.passed
    assert "the gain's 90% interval [-0.02, 0.01]" in rule.note
    assert "on these validation rows a student exactly as good as its baseline passes about 29% of the time" in rule.note
    assert "80% would need about 5.1x as many validation rows, or a margin of 0.023" in rule.note
    assert "test" not in rule.note


def test_the_power_figures_agree_with_each_other() -> None:
    power = NonInferiorityPower.from_interval(-0.03, 0.02, margin=0.01)
    assert power.pass_probability_if_equal() < 0.5  # wider than the margin: an equal student fails more often than not
    # with rows_factor times the rows the se shrinks by its square root, and an equal student passes 80% of the time
    grown = NonInferiorityPower(power.se / math.sqrt(power.rows_factor()), power.margin)
    assert grown.pass_probability_if_equal() == pytest.approx(0.8)
    # at the resolvable margin, the same 80% on these rows
    assert NonInferiorityPower(power.se, power.resolvable_margin()).pass_probability_if_equal() == pytest.approx(0.8)
    # a narrow interval: nearly every equal student passes; a zero-width one always does
    assert NonInferiorityPower.from_interval(-0.002, 0.002, margin=0.01).pass_probability_if_equal() > 0.999
    assert NonInferiorityPower(0.0, 0.01).pass_probability_if_equal() == 1.0


def test_an_inconclusive_reason_under_a_zero_margin_says_only_a_margin_would_decide_it() -> None:
    # margin 0: an equal student passes 2.5% of the time at any size (shown rounded: 3%); more rows cannot help
    wide = {"gain.roc_auc.ci_low": -0.02, "gain.roc_auc.ci_high": 0.02}
    (rule,) = evaluate_gate(GateConfig(rules=["noninferior(roc_auc)"], non_inferiority_margin=0.0), wide).rules
    assert rule.inconclusive and not rule.passed
    assert rule.note.endswith(
        "passes about 3% of the time: no number of rows would raise that to 80%, only a margin of 0.029 would"
    )


def test_a_gate_failed_only_on_undecidable_rules_says_it_is_undecided() -> None:
    """Still failed (nothing was shown), but the verdict says the evidence fell short, not the student."""
    rules = GateConfig(rules=["noninferior(roc_auc)", "fidelity.alert_overlap >= 0.8", "retention.roc_auc >= 0.98"])
    wide = {"gain.roc_auc.ci_low": -0.02, "gain.roc_auc.ci_high": 0.02, "fidelity.alert_overlap": 0.9}
    few = {"fidelity.alert_overlap": "12 teacher alerts < 30"}
    undecided = evaluate_gate(rules, wide | {"retention.roc_auc": 0.99}, few)
    assert not undecided.passed and undecided.status == "failed" and undecided.undecided
    assert undecided.verdict().startswith("failed, undecided: every failing rule is inconclusive or not estimable")
    assert undecided.as_dict()["undecided"] is True and undecided.as_dict()["status"] == "failed"
    # one rule decided against the student: plainly failed
    worse = evaluate_gate(rules, wide | {"retention.roc_auc": 0.90}, few)
    assert not worse.undecided and worse.verdict() == "failed"
    passed = evaluate_gate(rules, {"gain.roc_auc.ci_low": 0.0, "fidelity.alert_overlap": 0.9, "retention.roc_auc": 0.99})
    assert passed.passed and not passed.undecided and passed.verdict() == "passed"
