"""A small but real fraud distillation, shared by the end-to-end tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

SMALL = [
    "data.simulation.n_customers=300",
    "data.simulation.n_terminals=600",
    "data.simulation.n_days=80",
    "data.simulation.train_days=21",
    "teacher.params.n_trees=30",
    "teacher.params.boosting_iterations=40",
    "student.params.n_estimators=60",
    "evaluation.bootstrap=30",
    "evaluation.efficiency_rows=3000",
    "evaluation.latency_repeats=20",
    "transfer.munge.enabled=true",  # the fraud default leaves MUNGE off; the e2e run covers every transfer source
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow SQLite store for the module (tests below share one distillation)."""
    from stillroom import tracking

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.setenv("STILLROOM_CACHE_DIR", str(root / "cache"))
    mp.chdir(root)
    tracking.use_store(uri)
    yield uri
    tracking.use_store(None)
    mp.undo()


@pytest.fixture(scope="module")
def small_overrides() -> list[str]:
    return list(SMALL)


def workdir(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///")).parent
