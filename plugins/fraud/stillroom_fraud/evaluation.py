"""The fraud evaluator: what a fraud-model reviewer asks for, per model, on the test split.

Recall at fixed false-positive rates, card precision@k per day (each day on its own, and the
handbook's, with cards detected on earlier days removed),
precision within the analysts' alert budget, expected cost under the configured cost matrix,
PSI stability (validation -> test score drift) and alert/detection rates per subgroup.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stillroom.contract import CORE_OPERATING_POINT as CORE_POINT
from stillroom.contract import EvaluationContext, EvaluationResult, OperatingPointRecord, plots
from stillroom.contract import metrics as core_metrics

from .metrics import FraudMetricSettings, fpr_key, fraud_metrics, group_rates, recall_at_fpr

CORE_OWNED = ("roc_auc", "average_precision", "brier", "ece")


def settings(ctx: EvaluationContext) -> FraudMetricSettings:
    """The run's metric settings; the card column is the one the dataset named (lineage ``card_column``)."""
    cfg = ctx.config.fraud
    return FraudMetricSettings(
        card_k=cfg.card_precision_k,
        budget_fraction=cfg.alert_budget,
        cost_fn=cfg.cost_false_negative,
        cost_fp=cfg.cost_false_positive,
        label_col=ctx.bundle.label,
        day_col=ctx.bundle.time or "TX_TIME_DAYS",
        card_col=ctx.bundle.details.get("card_column") or "",
    )


def evaluate_fraud(ctx: EvaluationContext) -> EvaluationResult:
    result = EvaluationResult()
    s = settings(ctx)
    has_cards = bool(s.card_col) and {s.day_col, s.card_col, s.label_col} <= set(ctx.frame.columns)
    for role, scores in ctx.predictions.items():
        values = fraud_metrics(ctx.y_true, scores, ctx.frame if has_cards else None, ctx.thresholds[role], s)
        result.metrics.update({f"{role}.{k}": v for k, v in values.items() if k not in CORE_OWNED})
        if role in ctx.valid_predictions:
            result.metrics[f"{role}.psi_validation_to_test"] = core_metrics.psi(ctx.valid_predictions[role], scores)
    for role, (_, low, high) in core_metrics.bootstrap_many(
        lambda y, p: recall_at_fpr(y, p, 0.01),
        ctx.y_true,
        ctx.predictions,
        n_boot=ctx.config.evaluation.bootstrap,
        level=ctx.config.evaluation.ci_level,
        seed=ctx.seed,
    ).items():
        result.intervals[f"{role}.recall_at_fpr_0_01"] = (low, high)
    for point in operating_points(ctx, s, has_cards):
        result.add_operating_point(point)
    if ctx.bundle.group and ctx.bundle.group in ctx.frame.columns:
        table = _group_table(ctx)
        result.tables["group_rates"] = table
        if ctx.artifact_dir is not None:
            path = plots.subgroup_bars(
                table, "alert_rate", ctx.bundle.group, Path(ctx.artifact_dir) / "plots" / "subgroup_rates.png"
            )
            result.artifacts.append(str(Path(path).relative_to(ctx.artifact_dir)))
    return result


def operating_points(ctx: EvaluationContext, s: FraudMetricSettings, has_cards: bool) -> list[OperatingPointRecord]:
    """Where each thresholded fraud metric holds, for the model card: the analysts' alert
    budget, the daily card review, fixed false-positive rates, and the core's operating point
    (expected cost and the subgroup rates are computed at its thresholds)."""
    points = [
        OperatingPointRecord(
            "fraud.alert_budget",
            f"the top {s.budget_fraction:.2%} of test transactions by score (the analysts' review capacity)",
            ["precision_at_budget", "recall_at_budget"],
        ),
        OperatingPointRecord(
            "fixed false-positive rates",
            "the lowest threshold whose test false-positive rate is at most the rate named",
            [fpr_key(f) for f in s.fprs],
        ),
        OperatingPointRecord(CORE_POINT, "", ["expected_cost"]),
    ]
    if has_cards:
        k = s.card_k
        rule = (
            f"the {k} riskiest cards of each test day; handbook_: cards detected on earlier days removed "
            "(Le Borgne et al.), card_: each day on its own"
        )
        points.insert(
            1, OperatingPointRecord("fraud.card_precision_k", rule, [f"handbook_card_precision_at_{k}", f"card_precision_at_{k}"])
        )
    return points


def _group_table(ctx: EvaluationContext) -> pd.DataFrame:
    tables = []
    for role, scores in ctx.predictions.items():
        table = group_rates(ctx.frame, ctx.y_true, scores, ctx.thresholds[role], ctx.bundle.group)
        tables.append(table.assign(model=role))
    return pd.concat(tables, ignore_index=True)
