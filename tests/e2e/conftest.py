"""A small but real fraud distillation, shared by the end-to-end tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stillroom.testing import temporary_store

SMALL_MODELS = [  # a small teacher and student, a short evaluation: whatever the data
    "teacher.params.n_trees=30",
    "teacher.params.boosting_iterations=40",
    "student.params.n_estimators=60",
    "evaluation.bootstrap=30",
    "evaluation.efficiency_rows=3000",
    "evaluation.latency_repeats=20",
]
SMALL = [
    "data.simulation.n_customers=300",
    "data.simulation.n_terminals=600",
    "data.simulation.n_days=87",  # 37 days of feature history, then 49 days of periods
    "data.simulation.train_days=21",
    *SMALL_MODELS,
    "transfer.munge.enabled=true",  # the fraud default leaves MUNGE off; the e2e run covers every transfer source
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow SQLite store for the module (tests below share one distillation)."""
    with temporary_store(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture(scope="module")
def small_overrides() -> list[str]:
    return list(SMALL)


def workdir(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///")).parent
