"""The fraud vertical's registration hooks and its teacher/student, through the plugin manager."""

from __future__ import annotations

from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stillroom.api import get_plugin_manager
from stillroom.contract import ConfigError, ModelLoadError, hookimpl
from stillroom.contract.config import StudentConfig, TeacherConfig
from stillroom.tasks.targets import SoftTargets, soften
from stillroom_fraud.loaders import simulated_bundle
from stillroom_fraud.student import LightGBMStudent


@pytest.fixture(scope="module")
def bundle():  # noqa: ANN201
    return simulated_bundle(n_customers=200, n_terminals=400, n_days=80, seed=3, train_days=14)


def test_registration_hooks_declare_fraud_components() -> None:
    pm = get_plugin_manager()
    reg = pm.registry
    assert pm.task("fraud").compliance_profile == "fraud"
    # stillroom_datasets, stillroom_teachers, stillroom_students, stillroom_evaluators
    assert {"fraud.simulated", "fraud.transactions", "fraud.ulb", "fraud.table"} <= set(reg.names("dataset"))
    assert reg.get("teacher", "fraud.ensemble").plugin == "fraud"
    assert reg.get("student", "fraud.lightgbm").task == "fraud"
    assert [e.name for e in reg.for_task("evaluator", "fraud")] == ["core.generic", "fraud.metrics"]
    profile = pm.compliance_profile(pm.task("fraud"))
    assert "student.recall_at_fpr_0_01" in profile.metrics and "model_card.md" in profile.artifacts


def test_make_student_and_teacher_through_hooks(bundle) -> None:  # noqa: ANN001
    pm = get_plugin_manager()
    task = pm.task("fraud")
    # stillroom_make_student: the core's implementation builds the registered student
    student = pm.make_student(StudentConfig(name="fraud.lightgbm", params={"n_estimators": 20}), task, seed=0)
    assert isinstance(student, LightGBMStudent)
    # stillroom_make_teacher: the registered ensemble, trained on the bundle
    teacher = pm.make_teacher(
        TeacherConfig(name="fraud.ensemble", params={"n_trees": 10, "boosting_iterations": 10}), task, bundle, 0
    )
    p = teacher.predict(bundle.X(bundle.test))
    assert p.shape == (len(bundle.test),) and ((p >= 0) & (p <= 1)).all()
    desc = teacher.describe()
    assert desc.n_parameters > 1000 and desc.size_bytes > 10_000 and desc.details["identity"]


def test_teacher_from_estimator_file(bundle, tmp_path: Path) -> None:  # noqa: ANN001
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(bundle.X(bundle.train), bundle.y(bundle.train))
    path = tmp_path / "champion.joblib"
    joblib.dump(model, path)
    pm = get_plugin_manager()
    teacher = pm.make_teacher(TeacherConfig(uri=str(path)), pm.task("fraud"), bundle, 0)
    np.testing.assert_allclose(teacher.predict(bundle.X(bundle.test)), model.predict_proba(bundle.X(bundle.test))[:, 1])
    assert teacher.describe().n_parameters == len(bundle.features) + 1
    path.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="is not a readable estimator"):
        pm.make_teacher(TeacherConfig(uri=str(path)), pm.task("fraud"), bundle, 0)


def test_a_plugin_can_take_over_student_building(register_plugin) -> None:  # noqa: ANN001
    class Tiny:
        @hookimpl
        def stillroom_make_student(self, spec, task, seed):  # noqa: ANN001, ANN201
            return LightGBMStudent({"n_estimators": 3}, seed) if spec.name == "tiny" else None

    register_plugin(Tiny(), "tiny")
    pm = get_plugin_manager()
    student = pm.make_student(StudentConfig(name="tiny"), pm.task("fraud"), 0)
    assert student.params["n_estimators"] == 3


def test_student_learns_soft_targets_and_logs_natively(bundle) -> None:  # noqa: ANN001
    X, y = bundle.X(bundle.train), bundle.y(bundle.train)
    soft = np.clip(0.8 * y + 0.1, 0, 1)
    student = LightGBMStudent({"n_estimators": 50, "early_stopping_rounds": 0}, seed=0).fit(X, SoftTargets(y, soft, 1.0, 1.0))
    p = student.predict(X)
    assert p[y == 1].mean() > p[y == 0].mean() + 0.3
    # it fitted the soft targets 0.1 / 0.9, not hard 0/1
    assert 0.03 < p.min() and p.max() < 0.97 and p.mean() == pytest.approx(soft.mean(), abs=0.01)
    native = student.native_model()
    assert native.flavor == "lightgbm" and "tree" in native.model.model_to_string()[:200]
    assert student.describe().details["trees"] == 50
    with pytest.raises(ConfigError, match="student.params.n_leaves"):
        LightGBMStudent({"n_leaves": 3}, 0)


def _teacher_world(n: int = 12_000) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows, a teacher's probabilities (a smooth function of them) and labels drawn from it."""
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    p = expit(1.5 * X["a"] - 3.5 + 0.8 * X["b"] ** 2)
    return X, p.to_numpy(), (rng.random(n) < p).astype(float).to_numpy()


def test_tempered_student_predicts_on_the_teachers_scale(tmp_path: Path) -> None:
    """T shapes training only: the student's probabilities track the teacher's, not
    sigmoid(logit / T), so its calibration survives distillation."""
    X, p, y = _teacher_world()
    hard = np.where(np.arange(len(y)) < 4000, y, np.nan)  # a third labelled, the rest a pool
    student = LightGBMStudent({"n_estimators": 80, "early_stopping_rounds": 0}, seed=0).fit(X, SoftTargets(hard, p, 3.0, 0.5))
    q = student.predict(X)
    assert np.mean(np.abs(q - p)) < 0.02
    assert np.mean(np.abs(soften(p, 3.0) - p)) > 0.1  # what a student fitting tempered targets would be off by
    assert "temperature 3" in student.describe().kind


def test_shipped_model_file_reproduces_the_student(tmp_path: Path) -> None:
    """The logged text model alone (no stillroom code) gives the student's probabilities."""
    X, p, y = _teacher_world(4000)
    student = LightGBMStudent({"n_estimators": 30}, seed=1).fit(
        X[:3000], SoftTargets(y[:3000], p[:3000], 2.0, 0.7), X[3000:], SoftTargets(y[3000:], p[3000:], 2.0, 0.7)
    )
    path = tmp_path / "student.txt"
    student.booster.save_model(str(path))
    reloaded = lgb.Booster(model_file=str(path))
    np.testing.assert_allclose(reloaded.predict(X), student.predict(X), rtol=0, atol=1e-12)
    assert ((reloaded.predict(X) > 0) & (reloaded.predict(X) < 1)).all()
    raw = student.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(reloaded.predict(X), expit(raw), atol=1e-12)  # probabilities, from the file's own objective


def test_baseline_learns_from_labels_only() -> None:
    X, p, y = _teacher_world(6000)
    baseline = LightGBMStudent({"n_estimators": 60}, seed=0).fit(
        X[:5000], SoftTargets.labels_only(y[:5000]), X[5000:], SoftTargets.labels_only(y[5000:])
    )
    assert baseline.predict(X).mean() == pytest.approx(y.mean(), abs=0.01)
    assert "no teacher" in baseline.describe().kind
