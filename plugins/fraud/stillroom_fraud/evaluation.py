"""The fraud evaluator: what a fraud-model reviewer asks for, per model, on the test split.

Recall at fixed false-positive rates, card precision@k per day (the handbook's metric),
precision within the analysts' alert budget, expected cost under the configured cost matrix,
PSI stability (validation -> test score drift) and alert/detection rates per subgroup.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stillroom.contract import EvaluationContext, EvaluationResult, plots
from stillroom.contract import metrics as core_metrics

from .metrics import FraudMetricSettings, fraud_metrics, group_rates, recall_at_fpr

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
    if ctx.bundle.group and ctx.bundle.group in ctx.frame.columns:
        table = _group_table(ctx)
        result.tables["group_rates"] = table
        if ctx.artifact_dir is not None:
            path = plots.subgroup_bars(
                table, "alert_rate", ctx.bundle.group, Path(ctx.artifact_dir) / "plots" / "subgroup_rates.png"
            )
            result.artifacts.append(str(Path(path).relative_to(ctx.artifact_dir)))
    return result


def _group_table(ctx: EvaluationContext) -> pd.DataFrame:
    tables = []
    for role, scores in ctx.predictions.items():
        table = group_rates(ctx.frame, ctx.y_true, scores, ctx.thresholds[role], ctx.bundle.group)
        tables.append(table.assign(model=role))
    return pd.concat(tables, ignore_index=True)
