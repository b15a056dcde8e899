"""Hook implementations of the fraud vertical: registration only, the work lives beside it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stillroom.contract import (
    ROLES,
    ComplianceProfile,
    DatasetSpec,
    EvaluatorSpec,
    InputFormat,
    RunContext,
    StudentSpec,
    TaskSpec,
    TeacherSpec,
    hookimpl,
)

from . import datasets
from .config import FraudConfig
from .evaluation import evaluate_fraud
from .raw import RAW, format_tags
from .student import LightGBMStudent
from .teacher import train_ensemble_teacher

CARD = {
    "intended_use": (
        "Batch scoring of card transactions to rank them for fraud review, replacing a heavier "
        "champion model at a fraction of its cost. Decision support for analysts; not for "
        "automatic account blocking without human review."
    ),
    "factors": "Alert and detection rates are reported per subgroup column (terminal region in the simulated data).",
    "metrics": (
        "ROC-AUC and average precision (ranking), recall at FPR 0.1%/0.5%/1%, card precision@k per day "
        "(handbook_: Le Borgne et al.'s, cards detected on earlier days removed; card_: each day on its own), "
        "precision within the alert budget, expected cost under the configured cost "
        "matrix, Brier and ECE (calibration), PSI validation->test (stability), fidelity to the teacher."
    ),
    "ethical_considerations": (
        "Fraud alerts affect customers (declines, friction). Check subgroup alert rates for "
        "disparities before promotion; input examples logged with the model are synthetic."
    ),
    "caveats": (
        "Fraud patterns drift: monitor PSI in every scoring run and re-distill when it exceeds 0.2. "
        "Labels arrive with a delay; recent performance estimates are provisional."
    ),
}


@hookimpl
def stillroom_tasks() -> Iterable[TaskSpec]:
    yield TaskSpec(
        name="fraud",
        description="heavy tabular fraud teacher distilled into a fast LightGBM student for batch scoring",
        config_model=FraudConfig,
        default_config=Path(__file__).with_name("default.yaml"),
        compliance_profile="fraud",
        task_type="binary",
        card=CARD,
    )


@hookimpl
def stillroom_datasets() -> Iterable[DatasetSpec]:
    yield DatasetSpec(
        "fraud.simulated", "fraud", datasets.load_simulated, "seeded transaction simulator (Le Borgne et al. shape)"
    )
    yield DatasetSpec(
        "fraud.transactions",
        "fraud",
        datasets.load_transactions_file,
        "raw transaction log (CSV/Parquet files or a folder): features and a split by calendar dates",
    )
    yield DatasetSpec("fraud.ulb", "fraud", datasets.load_ulb_file, "ULB credit-card format: Time, V1..V28, Amount, Class")
    yield DatasetSpec("fraud.table", "fraud", datasets.load_table_file, "any CSV/Parquet with a label column")


@hookimpl
def stillroom_teachers() -> Iterable[TeacherSpec]:
    yield TeacherSpec("fraud.ensemble", "fraud", train_ensemble_teacher, "soft-voting RF + ExtraTrees + HGB + logistic")


@hookimpl
def stillroom_students() -> Iterable[StudentSpec]:
    yield StudentSpec("fraud.lightgbm", "fraud", LightGBMStudent, "LightGBM on soft targets (cross-entropy objective)")


@hookimpl
def stillroom_evaluators() -> Iterable[EvaluatorSpec]:
    yield EvaluatorSpec(
        "fraud.metrics",
        "fraud",
        evaluate_fraud,
        "fraud compliance metrics, PSI, subgroup rates",
        reports=lambda bundle, config: {f"{role}.*": None for role in ROLES},
    )


@hookimpl
def stillroom_before_run(context: RunContext) -> None:
    """A model trained on raw transactions (a log or the simulator) records how to read raw ones,
    so a scoring job can compute the same features from a raw batch."""
    if context.task.name != "fraud":
        return
    fmt = context.config.data.raw_format()
    if fmt is not None:
        context.tags.update(format_tags(fmt))


@hookimpl
def stillroom_input_formats() -> Iterable[InputFormat]:
    yield RAW


@hookimpl
def stillroom_compliance_profiles() -> Iterable[ComplianceProfile]:
    per_model = (
        "recall_at_fpr_0_001",
        "recall_at_fpr_0_005",
        "recall_at_fpr_0_01",
        "precision_at_budget",
        "expected_cost",
        "psi_validation_to_test",
    )
    yield ComplianceProfile(
        name="fraud",
        metrics=tuple(f"{r}.{m}" for r in ROLES for m in per_model)
        + ("student.recall_at_fpr_0_01.ci_low", "student.average_precision.ci_low"),
        params=("fraud.cost_false_negative", "fraud.cost_false_positive", "fraud.alert_budget", "data.dataset"),
        artifacts=(),
        description="Average precision, recall at fixed FPR, alert-budget precision, expected cost, PSI, subgroup rates.",
    )


SEARCH_SPACE: dict[str, Any] = {
    # size and speed of the LightGBM student
    "student.params.n_estimators": {"low": 30, "high": 300, "integer": True, "log": True},
    "student.params.num_leaves": {"low": 7, "high": 63, "integer": True, "log": True},
    # histogram bins decided retention in bench/results/fraud.md (255: 0.986, 4095: 1.000)
    "student.params.max_bin": {"choices": [255, 1023, 4095]},
    "recipe.alpha": {"low": 0.3, "high": 1.0},
    "recipe.temperature": {"low": 1.0, "high": 3.0},
    # what the teacher labels: the label-delay pool, MUNGE synthetic points
    "transfer.unlabelled_pool": {"choices": [True, False]},
    "transfer.munge.enabled": {"choices": [False, True]},
}


@hookimpl
def stillroom_search_space(task: TaskSpec) -> dict[str, Any] | None:
    """Trees, leaves, bins, alpha, temperature, pool and MUNGE for ``stillroom search fraud``."""
    return SEARCH_SPACE if task.name == "fraud" else None
