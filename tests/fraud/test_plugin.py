"""The fraud vertical's registration hooks and its teacher/student, through the plugin manager."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from stillroom import hookimpl
from stillroom.config import StudentConfig, TeacherConfig
from stillroom.errors import ConfigError, ModelLoadError
from stillroom.plugins import get_plugin_manager
from stillroom_fraud.loaders import simulated_bundle
from stillroom_fraud.student import LightGBMStudent


@pytest.fixture(scope="module")
def bundle():  # noqa: ANN201
    return simulated_bundle(n_customers=200, n_terminals=400, n_days=75, seed=3, train_days=14)


def test_registration_hooks_declare_fraud_components() -> None:
    pm = get_plugin_manager()
    reg = pm.registry
    assert pm.task("fraud").compliance_profile == "fraud"
    # stillroom_datasets, stillroom_teachers, stillroom_students, stillroom_evaluators
    assert {"fraud.simulated", "fraud.ulb", "fraud.table"} <= set(reg.names("dataset"))
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
    teacher = pm.make_teacher(TeacherConfig(name="fraud.ensemble", params={"n_trees": 10, "boosting_iterations": 10}), task, bundle, 0)
    p = teacher.predict(bundle.X(bundle.test))
    assert p.shape == (len(bundle.test),) and ((p >= 0) & (p <= 1)).all()
    desc = teacher.describe()
    assert desc.n_parameters > 1000 and desc.size_bytes > 10_000 and desc.details["identity"]


def test_teacher_from_estimator_file(bundle, tmp_path: Path) -> None:  # noqa: ANN001
    model = LogisticRegression(max_iter=500).fit(bundle.X(bundle.train), bundle.y(bundle.train))
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
    student = LightGBMStudent({"n_estimators": 50, "early_stopping_rounds": 0}, seed=0).fit(X, soft)
    p = student.predict(X)
    assert p[y == 1].mean() > p[y == 0].mean() + 0.3
    assert 0.05 < p.min() and p.max() < 0.95  # it fitted the soft targets, not hard 0/1
    native = student.native_model()
    assert native.flavor == "lightgbm" and "tree" in native.model.model_to_string()[:200]
    assert student.describe().details["trees"] == 50
    with pytest.raises(ConfigError, match="student.params.n_leaves"):
        LightGBMStudent({"n_leaves": 3}, 0)
