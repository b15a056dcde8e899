"""Teacher-output and trained-model caches: reuse on the same key, recompute on corruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from stillroom.cache import cache_key, cached_model, cached_outputs, default_cache_dir, use_cache_dir


def test_outputs_are_computed_once_per_key(tmp_path: Path) -> None:
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.array([0.1, 0.9])

    key = cache_key("teacher-a", "digest-1")
    first, hit1 = cached_outputs(tmp_path, key, compute)
    second, hit2 = cached_outputs(tmp_path, key, compute)
    assert (hit1, hit2, len(calls)) == (False, True, 1)
    np.testing.assert_array_equal(first, second)
    _, hit3 = cached_outputs(tmp_path, cache_key("teacher-a", "digest-2"), compute)
    assert not hit3 and len(calls) == 2
    _, hit4 = cached_outputs(tmp_path, None, compute)  # no stable identity: never cached
    assert not hit4 and len(calls) == 3


def test_corrupted_entries_are_recomputed_not_trusted(tmp_path: Path) -> None:
    key = cache_key("t", "d")
    cached_outputs(tmp_path, key, lambda: np.ones(3))
    (tmp_path / f"teacher-{key}.npy").write_bytes(b"garbage")
    values, hit = cached_outputs(tmp_path, key, lambda: np.zeros(3))
    assert not hit and values.tolist() == [0, 0, 0]

    X, y = np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 2
    model, hit = cached_model(tmp_path, "m", lambda: LogisticRegression().fit(X, y))
    again, hit_again = cached_model(tmp_path, "m", lambda: 1 / 0)
    assert (hit, hit_again) == (False, True)
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X))
    (tmp_path / "model-m.joblib").write_bytes(b"garbage")
    refit, hit = cached_model(tmp_path, "m", lambda: "refitted")
    assert (refit, hit) == ("refitted", False)
    assert not list(tmp_path.glob("*.partial"))


def test_a_runs_cache_dir_applies_inside_the_run_only(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("STILLROOM_CACHE_DIR", str(tmp_path / "env"))
    with use_cache_dir(tmp_path / "run"):
        assert default_cache_dir() == tmp_path / "run"
    assert default_cache_dir() == tmp_path / "env"
    with use_cache_dir(None):  # no run.cache_dir: the environment decides
        assert default_cache_dir() == tmp_path / "env"
