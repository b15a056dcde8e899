"""A real fraud student (the vertical's LightGBM class, custom distillation objective and all),
logged and registered in a real MLflow SQLite store, shared by the tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.testing import temporary_store

FEATURES = [f"f{i}" for i in range(12)]
MODEL = "scale-student"


def transactions(rows: int, seed: int) -> pd.DataFrame:
    """Feature rows with an id column, like a scoring batch (``TRANSACTION_ID`` + model inputs)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame["f3"] = rng.integers(0, 5, rows).astype(float)  # a discrete column: values land on thresholds
    frame.insert(0, "TRANSACTION_ID", np.arange(rows, dtype=np.int64) + 10_000)
    return frame


@dataclass(frozen=True)
class Registered:
    uri: str  # models:/NAME/VERSION
    booster: object  # the shipped lightgbm.Booster, as LightGBM predicts
    model_id: str  # the logged model the version points at
    workdir: Path


def fit_student(seed: int = 0) -> object:
    """The fraud vertical's student distilled from a synthetic teacher (init score baked into tree 0)."""
    from stillroom.tasks.targets import SoftTargets
    from stillroom_fraud.student import LightGBMStudent

    X = transactions(6000, seed)[FEATURES]
    logit = 1.5 * X["f0"] - X["f1"] * X["f2"] + 0.5 * X["f3"] - 3.0
    teacher = 1 / (1 + np.exp(-logit.to_numpy()))
    hard = (np.random.default_rng(seed + 1).random(len(X)) < teacher).astype(float)
    hard[::3] = np.nan  # a third unlabelled: labelled by the teacher only, as in the transfer set
    student = LightGBMStudent({"n_estimators": 40, "early_stopping_rounds": 0, "num_threads": 2}, seed=seed)
    return student.fit(X, SoftTargets(hard, teacher, 1.0, 0.7))


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    """The student logged (native + compiled) and registered as version 1 in a fresh store."""
    from stillroom import tracking
    from stillroom.contract.bundle import synthetic_example

    root = tmp_path_factory.mktemp("scale-store")
    with temporary_store(root):
        student = fit_student()
        X = transactions(500, 1)[FEATURES]
        with tracking.run("scale-tests", "distill", {"stillroom.role": "distillation"}):
            logged = tracking.log_student_model(student.native_model(), synthetic_example(X))
            version = tracking.register(logged.model_uri, MODEL, {"stillroom.gate": "passed"}, "test student")
        yield Registered(f"models:/{MODEL}/{version}", student.booster, logged.model_id, root)
