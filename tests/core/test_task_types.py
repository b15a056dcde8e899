"""The core beyond binary: targets, metrics and whole runs for multiclass and regression.

The toy vertical here is a real plugin (registered at run time) with scikit-learn teachers
and students, so the generic pipeline is tested on its own, without any shipped vertical:
labels with gaps, an unlabelled pool, multi-output teachers, a real MLflow store.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from stillroom.contract import hookimpl
from stillroom.contract.bundle import DataBundle, validate_bundle
from stillroom.contract.config import DistillConfig
from stillroom.contract.protocols import ModelDescription, NativeModel
from stillroom.contract.specs import ComplianceProfile, DatasetSpec, StudentSpec, TaskSpec, TeacherSpec
from stillroom.errors import DataError, ModelLoadError
from stillroom.tasks import measures as taskmetrics
from stillroom.tasks.targets import MulticlassTargets, MultilabelTargets, RegressionTargets, labels_only, make_targets
from stillroom.testing import assert_compliance_bundle

# --------------------------------------------------------------------------- targets


def test_multiclass_loss_by_hand() -> None:
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    t = MulticlassTargets(np.array([0, -1]), teacher, temperature=1.0, alpha=0.5)
    z = np.zeros((2, 3))  # the student says "uniform": log-softmax = -ln 3 everywhere
    # row 0: 0.5 * KL(p || u) + 0.5 * CE(0, u); row 1 (unlabelled): KL(p || u) alone
    kl = [float(np.sum(p * np.log(p * 3))) for p in teacher]
    expected = (0.5 * kl[0] + 0.5 * np.log(3) + kl[1]) / 2
    assert t.loss(z) == pytest.approx(expected)
    np.testing.assert_allclose(t.blended(), [[0.85, 0.1, 0.05], [0.1, 0.1, 0.8]])


def test_multiclass_temperature_softens_and_is_minimal_at_the_teacher() -> None:
    teacher = np.array([[0.8, 0.15, 0.05]])
    t = MulticlassTargets(np.array([-1]), teacher, temperature=2.0, alpha=1.0)
    # softmax(log p / 2) = sqrt(p) normalised
    np.testing.assert_allclose(t.soft(), np.sqrt(teacher) / np.sqrt(teacher).sum())
    at_teacher = t.loss(np.log(teacher))
    assert at_teacher == pytest.approx(0.0, abs=1e-12)
    assert t.loss(np.log(teacher) + np.array([[0.3, 0.0, -0.3]])) > at_teacher


def test_regression_blend_and_gaps() -> None:
    hard = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, 4.0]])
    teacher = np.array([[2.0, 5.0], [6.0, 7.0], [1.0, 2.0]])
    t = RegressionTargets(hard, teacher, alpha=0.25)
    np.testing.assert_allclose(t.blended(), [[1.25, 5.0], [6.0, 7.0], [2.5, 3.5]])
    rows, values = labels_only("regression", hard).column(1)
    np.testing.assert_array_equal(rows, [2])
    np.testing.assert_allclose(values, [4.0])


def test_multilabel_columns_are_binary_targets() -> None:
    hard = np.array([[1.0, np.nan], [0.0, 1.0]])
    t = MultilabelTargets(hard, np.array([[0.9, 0.2], [0.1, 0.6]]), temperature=1.0, alpha=0.5)
    np.testing.assert_allclose(t.column(1).blended(), [0.2, 0.8])
    baseline = MultilabelTargets(hard)
    np.testing.assert_array_equal(baseline.rows(1), [1])
    assert len(baseline.column(1)) == 1


def test_targets_refuse_mismatched_teacher_and_unknown_type() -> None:
    with pytest.raises(ValueError, match="differ"):
        make_targets("regression", np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="classes"):
        make_targets("multiclass", np.array([0, 3]), np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="unknown task type"):
        make_targets("ordinal", np.zeros(2), None)


# --------------------------------------------------------------------------- metrics


def test_regression_metrics_skip_missing_values() -> None:
    y = np.array([[1.0, np.nan], [2.0, 1.0], [3.0, 3.0]])
    pred = np.array([[1.0, 100.0], [2.0, 1.0], [5.0, 3.0]])
    rmse = dict((m.name, m.fn) for m in taskmetrics.METRICS["regression"])["rmse"]
    # target 0: errors 0, 0, 2 -> sqrt(4/3); target 1: the NaN row (error 99) is skipped -> 0
    assert rmse(y, pred) == pytest.approx(np.sqrt(4 / 3) / 2)
    fid = taskmetrics.fidelity("regression", pred, pred + 1.0)
    assert fid["mae"] == pytest.approx(1.0) and fid["spearman"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["roc_auc", "average_precision"])
def test_multilabel_macro_of_a_resample_from_row_counts_equals_resampling_rows(name: str) -> None:
    from stillroom import metrics

    rng = np.random.default_rng(3)
    y = (rng.random((150, 4)) < [0.5, 0.2, 0.03, 0.3]).astype(float)  # endpoint 2: rare, often undefined
    y[rng.random((150, 4)) < 0.3] = np.nan  # missing labels, per endpoint
    y[:, 3] = np.nan  # an endpoint with no label at all: never in the mean
    p = np.round(np.clip(0.4 * np.nan_to_num(y) + rng.random((150, 4)), 0, 1), 2)
    macro = dict((m.name, m.fn) for m in taskmetrics.METRICS["multilabel"])[name]
    assert metrics.counts_metric(macro, y, p) is not None  # the fast path is taken
    fast = metrics.bootstrap_distribution(macro, y, {"p": p}, n_boot=100, seed=4)["p"]
    by_rows = [metrics.safe_metric(macro, y[i], p[i]) for i in metrics.resample_indices(len(y), 100, seed=4)]
    np.testing.assert_allclose(fast, by_rows, rtol=0, atol=1e-12)
    assert metrics.counts_metric(macro, y, np.where(p > 0.5, np.nan, p)) is None  # a NaN output: sklearn's path


def test_multiclass_metrics_by_hand() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8]])
    assert taskmetrics.accuracy(y, proba) == 0.75
    fid = taskmetrics.fidelity("multiclass", proba, proba[::-1])
    assert fid["agreement"] == pytest.approx(0.0)
    assert taskmetrics.fidelity("multiclass", proba, proba)["kl"] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- a toy vertical


class ForestTeacher:
    """A random forest teacher: class probabilities or regression values."""

    def __init__(self, bundle: DataBundle, seed: int) -> None:
        X, y = bundle.X(bundle.train), bundle.y(bundle.train)
        if bundle.task_type == "multiclass":
            self.model: Any = RandomForestClassifier(200, random_state=seed, n_jobs=1).fit(X, y)
        else:
            rows = ~np.isnan(y).any(axis=1)
            self.model = RandomForestRegressor(200, random_state=seed, n_jobs=1).fit(X[rows], y[rows])
        self.task_type = bundle.task_type

    def predict(self, X: Any) -> np.ndarray:
        if self.task_type == "multiclass":
            return self.model.predict_proba(X)
        return self.model.predict(X)

    def describe(self) -> ModelDescription:
        return ModelDescription("toy forest", "random forest", 200, 1_000_000, details={"identity": None})

    def native_model(self) -> NativeModel | None:
        return None


class TreeStudent:
    """A small multi-output regression tree fit to ``targets.blended()``: for multiclass it
    regresses the blended class distribution, so each leaf predicts a distribution."""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        self.model = DecisionTreeRegressor(max_depth=int(params.get("max_depth", 4)), random_state=seed)

    def fit(self, X: Any, targets: Any, X_valid: Any = None, targets_valid: Any = None) -> TreeStudent:
        y = targets.blended()
        rows = ~np.isnan(y).any(axis=1) if y.ndim == 2 else np.ones(len(y), bool)
        self.model.fit(X[rows], y[rows])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(X)

    def describe(self) -> ModelDescription:
        return ModelDescription("toy tree", "decision tree", int(self.model.tree_.node_count), 10_000)

    def native_model(self) -> NativeModel:
        return NativeModel("sklearn", self.model)


def _toy_bundle(task_type: str, seed: int = 0) -> DataBundle:
    rng = np.random.default_rng(seed)
    if task_type == "multiclass":
        X, y = make_classification(1600, 8, n_informative=5, n_classes=3, random_state=seed)
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).assign(label=y)
        labels: Any = "label"
    else:
        X, y = make_regression(1600, 8, n_informative=5, n_targets=2, noise=5.0, random_state=seed)
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).assign(logd=y[:, 0], solubility=y[:, 1])
        frame.loc[rng.random(len(frame)) < 0.2, "solubility"] = np.nan  # measured for 80% of molecules only
        labels = ["logd", "solubility"]
    parts = [frame.iloc[a:b].reset_index(drop=True) for a, b in ((0, 600), (600, 800), (800, 1100), (1100, 1600))]
    return DataBundle(
        parts[0], parts[1], parts[2], [f"x{i}" for i in range(8)], labels, unlabelled=parts[3], source="toy", task_type=task_type
    )


class ToyVertical:
    """``profile``: the tasks' own compliance profile (default: the core's alone)."""

    def __init__(self, config: Path, profile: ComplianceProfile | None = None) -> None:
        self.config = config
        self.profile = profile

    @hookimpl
    def stillroom_tasks(self) -> Iterable[TaskSpec]:
        profile = self.profile.name if self.profile else "core"
        for kind in ("multiclass", "regression"):
            yield TaskSpec(f"toy-{kind}", f"toy {kind}", DistillConfig, self.config, profile, task_type=kind)

    @hookimpl
    def stillroom_datasets(self) -> Iterable[DatasetSpec]:
        for kind in ("multiclass", "regression"):
            yield DatasetSpec(f"toy.{kind}", f"toy-{kind}", lambda cfg, seed, kind=kind: _toy_bundle(kind, seed))

    @hookimpl
    def stillroom_teachers(self) -> Iterable[TeacherSpec]:
        yield TeacherSpec("toy.forest", "*", lambda params, bundle, seed: ForestTeacher(bundle, seed))

    @hookimpl
    def stillroom_students(self) -> Iterable[StudentSpec]:
        yield StudentSpec("toy.tree", "*", TreeStudent)

    @hookimpl
    def stillroom_compliance_profiles(self) -> Iterable[ComplianceProfile]:
        return (self.profile,) if self.profile else ()


CONFIG = """
task: {task}
run: {{experiment: toy, registered_model: toy-student, seed: 0}}
data: {{dataset: {dataset}}}
teacher: {{name: toy.forest}}
student: {{name: toy.tree, params: {{max_depth: 5}}}}
recipe: {{alpha: 0.5}}
evaluation: {{bootstrap: 50, efficiency_rows: 500, latency_repeats: 5}}
gate: {{rules: ["{rule}"]}}
"""


@pytest.fixture
def toy(tmp_path: Path, register_plugin: Any) -> Path:
    default = tmp_path / "toy.yaml"
    default.write_text(CONFIG.format(task="toy-regression", dataset="toy.regression", rule="fidelity.r2 >= 0.5"))
    register_plugin(ToyVertical(default), "toy")
    return tmp_path


def _config(tmp_path: Path, kind: str, rule: str) -> Path:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(CONFIG.format(task=f"toy-{kind}", dataset=f"toy.{kind}", rule=rule))
    return path


@pytest.mark.slow
def test_multi_target_regression_run_is_audited(toy: Path, tracking_store: str) -> None:
    from stillroom.api import run_distillation

    summary = run_distillation("toy-regression", _config(toy, "regression", "fidelity.r2 >= 0.5"))
    m = summary["metrics"]
    assert summary["task_type"] == "regression" and summary["gate"] == "passed"
    # a depth-5 tree cannot copy a 200-tree forest exactly, but follows it closely
    assert 0.5 <= m["fidelity.r2"] < 1.0
    assert m["student.rmse.solubility"] > 0 and "teacher.r2.logd" in m
    assert m["retention.rmse"] == pytest.approx(m["teacher.rmse"] / m["student.rmse"])
    assert m["gain.rmse"] == pytest.approx(m["baseline.rmse"] - m["student.rmse"])
    low, high = summary["intervals"]["student.rmse"]
    assert low <= m["student.rmse"] <= high
    assert_compliance_bundle(summary["run_id"], "core")


@pytest.mark.slow
def test_multiclass_run_learns_from_the_pool(toy: Path, tracking_store: str) -> None:
    from stillroom.api import run_distillation

    summary = run_distillation("toy-multiclass", _config(toy, "multiclass", "fidelity.agreement >= 0.6"))
    m = summary["metrics"]
    assert summary["task_type"] == "multiclass" and summary["version"] == "1"
    assert m["teacher.accuracy"] > 0.6 and 0.6 <= m["fidelity.agreement"] <= 1.0
    assert m["fidelity.kl"] > 0 and np.isfinite(m["baseline_fidelity.agreement"])
    # the student saw the teacher's labels on 1,000 rows (train + pool), the baseline 600 labels
    assert summary["lineage"]["splits"]["unlabelled"]["rows"] == 500
    assert_compliance_bundle(summary["run_id"], "core")


def test_a_teacher_with_the_wrong_output_shape_is_refused(toy: Path, tracking_store: str, register_plugin: Any) -> None:
    class OneColumnTeacher(ForestTeacher):
        def predict(self, X: Any) -> np.ndarray:
            return super().predict(X)[:, 0]

    class Wrong:
        @hookimpl
        def stillroom_teachers(self) -> Iterable[TeacherSpec]:
            yield TeacherSpec("toy.wrong", "*", lambda params, bundle, seed: OneColumnTeacher(bundle, seed))

    register_plugin(Wrong(), "wrong")
    from stillroom.api import run_distillation

    with pytest.raises(ModelLoadError, match=r"teacher outputs .* shape \(1600,\); a regression task with 2 output"):
        run_distillation("toy-regression", _config(toy, "regression", "fidelity.r2 >= 0.5"), ["teacher.name=toy.wrong"])
    from mlflow import MlflowClient

    assert MlflowClient().search_registered_models() == []


def test_bundle_validation_by_task_type() -> None:
    bundle = _toy_bundle("multiclass")
    validate_bundle(bundle)
    bundle.test.loc[bundle.test.index[0], "label"] = 7
    with pytest.raises(DataError, match=r"class indices 0\.\.2, found \[7\]"):
        validate_bundle(bundle)
    regression = _toy_bundle("regression")
    regression.train["logd"] = regression.train["logd"].astype(str)
    with pytest.raises(DataError, match="label column 'logd' is not numeric"):
        validate_bundle(regression)


ATTACHED: list[tuple[str, Any]] = []


class PeekingStudent(TreeStudent):
    """A student that asks for the teacher model itself (as feature-based distillation does)."""

    uses_teacher_model = True

    def attach_teacher(self, teacher: Any) -> None:
        ATTACHED.append(("attached", teacher))

    def fit(self, X: Any, targets: Any, X_valid: Any = None, targets_valid: Any = None) -> TreeStudent:
        ATTACHED.append(("fit with teacher" if targets.has_teacher else "fit without teacher", None))
        return super().fit(X, targets, X_valid, targets_valid)


@pytest.mark.slow
def test_only_the_distilled_student_gets_the_teacher_model(toy: Path, tracking_store: str, register_plugin: Any) -> None:
    class Peek:
        @hookimpl
        def stillroom_students(self) -> Iterable[StudentSpec]:
            yield StudentSpec("toy.peek", "*", PeekingStudent)

    register_plugin(Peek(), "peek")
    from stillroom.api import run_distillation

    ATTACHED.clear()
    overrides = ["student.name=toy.peek", "run.register_student=false"]
    run_distillation("toy-multiclass", _config(toy, "multiclass", "fidelity.agreement >= 0.0"), overrides)
    events = [event for event, _ in ATTACHED]
    assert events == ["attached", "fit with teacher", "fit without teacher"]
    assert isinstance(ATTACHED[0][1], ForestTeacher)
