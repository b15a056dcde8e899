"""A logged model's requirements are read from the model itself and pinned: the distributions that
define its classes (nested anywhere in it), the flavor's loader, and their runtime dependencies;
a plugin's own list is kept; a real MLflow store receives exactly that list."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient
from sklearn.ensemble import RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression

from stillroom.contract import EstimatorTeacher, NativeModel, pinned_requirements
from stillroom.tracking.models import log_teacher_model
from stillroom.tracking.requirements import model_requirements, with_requirements


def _pin(name: str) -> str:
    return f"{name}=={md.version(name).split('+')[0]}"


def _fitted_voting() -> VotingClassifier:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    members = [("lr", LogisticRegression()), ("rf", RandomForestClassifier(n_estimators=3, random_state=0))]
    return VotingClassifier(members, voting="soft").fit(X, y)


def test_pins_drop_local_labels_and_skip_what_is_not_installed() -> None:
    assert pinned_requirements(["torch", "no-such-distribution-here", "torch"]) == [_pin("torch")]
    assert "+" not in pinned_requirements(["torch"])[0]


def test_a_scikit_learn_model_needs_its_loader_and_their_dependencies_and_nothing_the_process_imported() -> None:
    found = model_requirements("sklearn", _fitted_voting())
    assert found[:2] == [_pin("scikit-learn"), _pin("skops")]
    for dependency in ("numpy", "scipy", "joblib", "threadpoolctl"):  # scikit-learn's own, pinned as installed
        assert _pin(dependency) in found
    names = {line.split("==")[0] for line in found}
    assert not names & {"pytest", "torch", "stillroom", "mlflow"}  # imported by this process, not used by the model


class _Slotted:
    __slots__ = ("inner",)

    def __init__(self, inner: object) -> None:
        self.inner = inner


def test_classes_nested_in_containers_attributes_and_slots_bring_their_distribution() -> None:
    teacher = EstimatorTeacher(_fitted_voting(), "voting")  # a stillroom class, two levels down
    model = {"members": [_Slotted((1, teacher))]}
    names = {line.split("==")[0] for line in model_requirements("pyfunc", model)}
    assert {"cloudpickle", "stillroom", "scikit-learn"} <= names


def test_a_plugins_own_requirements_are_kept() -> None:
    own = {"pip_requirements": ["torch==2.13.0"]}
    assert with_requirements("pytorch", object(), own) is own
    extra = {"extra_pip_requirements": ["onnx"]}
    assert with_requirements("onnx", object(), extra) is extra
    lightgbm = with_requirements("lightgbm", object(), {})["pip_requirements"]
    assert lightgbm[0] == _pin("lightgbm") and {_pin("numpy"), _pin("scipy")} <= set(lightgbm)  # lightgbm's own needs


def test_the_logged_teacher_records_exactly_that_list(tracking_store: object, tmp_path: Path) -> None:
    voting = _fitted_voting()
    model_id = log_teacher_model(
        NativeModel("sklearn", voting), "teacher", "requirements", {"kind": "voting"}, pd.DataFrame(np.zeros((2, 3)))
    )
    model = MlflowClient().get_logged_model(model_id)
    written = Path(download_artifacts(f"{model.artifact_location}/requirements.txt", dst_path=str(tmp_path)))
    lines = written.read_text().split()
    assert lines == [_pin("mlflow"), *model_requirements("sklearn", voting)]


@pytest.mark.parametrize("flavor", ["lightgbm", "sklearn", "pytorch", "onnx", "pyfunc"])
def test_every_flavor_stillroom_logs_names_its_loader(flavor: str) -> None:
    assert model_requirements(flavor, object())  # never empty: at least the loader's distribution
