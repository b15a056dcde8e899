"""Big batches go to a pool of spawned worker processes: same scores, same flags, same order as
one process; a pool that cannot start costs speed, never the job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.errors import ConfigError
from stillroom.tasks.targets import labels_only
from stillroom_molecules import embedded, scorer
from stillroom_molecules.scorer import JOBS_VARIABLE, Scorer, scoring_jobs
from stillroom_molecules.student import LightGBMStudent


@pytest.fixture(scope="module")
def fitted() -> Scorer:
    train = embedded.solubility()[0].frame.head(300)
    student = LightGBMStudent({"n_estimators": 40}, seed=0).fit(
        train[["smiles"]], labels_only("regression", train[["SOL"]].to_numpy())
    )
    return student.scorer


@pytest.fixture()
def library() -> list[object]:
    """Raw NCI SMILES (salts, charges) with broken entries spread through the batch."""
    raw = [line.split()[0] for line in embedded.nci_pool_path().read_text().splitlines() if line.strip()][:1500]
    for i, bad in enumerate(["C1CC(", "", None, "not-a-molecule"]):
        raw.insert(100 + 300 * i, bad)
    return raw


def test_worker_pool_scores_like_one_process(fitted: Scorer, library: list[object], monkeypatch) -> None:
    monkeypatch.setattr(scorer, "PARALLEL_MIN_SMILES", 500)
    monkeypatch.setenv(JOBS_VARIABLE, "1")
    serial, serial_valid = fitted.predict_smiles(library)
    monkeypatch.setenv(JOBS_VARIABLE, "2")
    try:
        parallel, parallel_valid = fitted.predict_smiles(library)
        assert fitted._pool is not None  # the work really went to workers
        again, _ = fitted.predict_smiles(library)  # the pool is reused, not restarted
        model_copy = Path(fitted._cleanup.peek()[2][1])  # what the workers loaded
        assert (model_copy / "student.json").is_file()
    finally:
        fitted.close()
    assert not model_copy.exists()  # closing removes it, not only garbage collection
    assert np.array_equal(serial_valid, parallel_valid) and (~parallel_valid).sum() == 4
    assert np.array_equal(serial, parallel, equal_nan=True) and np.array_equal(parallel, again, equal_nan=True)
    assert np.isnan(parallel[~parallel_valid]).all() and np.isfinite(parallel[parallel_valid]).all()


def test_a_pool_that_cannot_start_falls_back_to_one_process(fitted: Scorer, library: list[object], monkeypatch) -> None:
    """A worker that cannot load the model (here: the files it is handed are empty) breaks the
    pool; the batch is still scored, in this process, with one warning."""
    monkeypatch.setattr(scorer, "PARALLEL_MIN_SMILES", 500)
    monkeypatch.setenv(JOBS_VARIABLE, "2")
    monkeypatch.setattr(Scorer, "save", lambda self, directory: directory)
    expected, _ = fitted.predict_block(library)
    broken = Scorer(fitted.kind, fitted.task_type, fitted.outputs, fitted.featurizer, boosters=fitted.boosters, init=fitted.init)
    with pytest.warns(RuntimeWarning, match="scoring in one process"):
        out, valid = broken.predict_smiles(library)
    assert np.array_equal(out, expected, equal_nan=True) and valid.sum() == len(library) - 4
    assert broken._pool is None
    frame = broken.frame(library)  # later batches go straight to one process
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(library)


def test_jobs_setting_is_checked(monkeypatch) -> None:
    monkeypatch.setenv(JOBS_VARIABLE, "two")
    with pytest.raises(ConfigError, match="STILLROOM_MOLECULES_JOBS='two'"):
        scoring_jobs()
    monkeypatch.setenv(JOBS_VARIABLE, "0")
    assert scoring_jobs() == 1
    monkeypatch.delenv(JOBS_VARIABLE)
    assert scoring_jobs() >= 1
