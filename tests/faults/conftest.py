"""A real SQLite store per module, a fork server running real ``stillroom`` commands in it, and the
small fraud settings every faulted distillation uses."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stillroom.api import recover_after_killed_jobs
from stillroom.testing import temporary_store

from .harness import ForkServer

TINY = [
    "data.simulation.n_customers=150",
    "data.simulation.n_terminals=300",
    "data.simulation.n_days=87",  # 37 days of feature history, then 49 days of periods
    "data.simulation.train_days=21",
    "teacher.params.n_trees=8",
    "teacher.params.boosting_iterations=8",
    "student.params.n_estimators=10",
    "evaluation.bootstrap=5",
    "evaluation.efficiency_rows=300",
    "evaluation.latency_repeats=2",
]
DISTILL = ["distill", "fraud", *[arg for s in TINY for arg in ("--set", s)]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("faults")
    with temporary_store(root):
        yield root


@pytest.fixture(scope="module")
def scratch_root(store: Path) -> Path:
    """The jobs' own temp folder (their ``TMPDIR``): what a killed job leaves there is theirs alone,
    not another test's."""
    (store / "tmp").mkdir(exist_ok=True)
    return store / "tmp"


@pytest.fixture(scope="module")
def recovery(scratch_root: Path) -> Callable[[str], None]:
    """What the next job does first (:func:`stillroom.api.recover_after_killed_jobs`), in the
    jobs' temp folder."""

    def recover(experiment: str) -> None:
        saved, tempfile.tempdir = tempfile.tempdir, str(scratch_root)
        try:
            recover_after_killed_jobs([experiment])
        finally:
            tempfile.tempdir = saved

    return recover


@pytest.fixture(scope="module")
def server(store: Path, scratch_root: Path) -> Iterator[ForkServer]:
    env = {key: os.environ[key] for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "STILLROOM_CACHE_DIR")}
    env |= {"TMPDIR": str(scratch_root)}
    fork = ForkServer(store, env)
    yield fork
    fork.close()
