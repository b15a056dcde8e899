"""The teacher cache key covers everything a teacher's outputs depend on: a change to any of them
is a new teacher, a change to nothing it reads is the same one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import DataBundle, teacher_cache_key
from stillroom.distillation.pipeline import outputs_key


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return frame.assign(y=(frame["a"] > 0).astype(int), y2=(frame["b"] > 0).astype(int), note=rng.normal(size=n))


@pytest.fixture
def bundle() -> DataBundle:
    return DataBundle(_frame(60, 0), _frame(20, 1), _frame(20, 2), features=["a", "b", "c"], label="y")


def _key(b: DataBundle, name: str = "t", params: dict | None = None, seed: int = 0) -> str:
    return teacher_cache_key(name, params or {"trees": 10}, seed, b)


CHANGES = {
    "teacher spec": lambda b: _key(b, name="other"),
    "parameters": lambda b: _key(b, params={"trees": 11}),
    "seed": lambda b: _key(b, seed=1),
    "feature order": lambda b: _key(replace(b, features=["b", "a", "c"])),
    "feature list": lambda b: _key(replace(b, features=["a", "b"])),
    "label column": lambda b: _key(replace(b, label="y2")),
    "label columns": lambda b: _key(replace(b, label=["y", "y2"], task_type="multilabel")),
    "task type": lambda b: _key(replace(b, task_type="regression")),
    "class names": lambda b: _key(replace(b, class_names=["no", "yes"])),
    "training data": lambda b: _key(replace(b, train=b.train.assign(a=b.train["a"] + 1e-9))),
    "training labels": lambda b: _key(replace(b, train=b.train.assign(y=1 - b.train["y"]))),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_input_of_the_teacher_changes_its_key(bundle: DataBundle, change: str) -> None:
    assert CHANGES[change](bundle) != _key(bundle)


def test_what_the_teacher_does_not_read_keeps_its_key(bundle: DataBundle) -> None:
    same = _key(bundle)
    assert _key(replace(bundle, train=bundle.train.copy())) == same
    assert _key(replace(bundle, train=bundle.train.assign(note=0.0))) == same  # a column it never reads
    assert _key(replace(bundle, test=_frame(20, 9))) == same  # splits it does not learn from


def test_validation_counts_when_the_teacher_learns_from_it(bundle: DataBundle) -> None:
    other = replace(bundle, validation=_frame(20, 7))
    key = lambda b: teacher_cache_key("t", {}, 0, b, splits=("train", "validation"))  # noqa: E731
    assert key(other) != key(bundle)


def test_the_cached_outputs_key_follows_the_task_and_the_rows(bundle: DataBundle) -> None:
    rows = bundle.X(bundle.test)
    base = outputs_key("teacher-1", bundle, rows)
    assert outputs_key("teacher-2", bundle, rows) != base
    assert outputs_key("teacher-1", replace(bundle, label="y2"), rows) != base
    assert outputs_key("teacher-1", replace(bundle, task_type="regression"), rows) != base
    assert outputs_key("teacher-1", bundle, rows[["b", "a", "c"]]) != base  # feature order
    assert outputs_key("teacher-1", bundle, rows.copy()) == base
