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


def _aged(path: Path, days: float, now: float) -> Path:
    import os

    os.utime(path, (now - days * 86400, now - days * 86400))
    return path


def _filled_cache(root: Path, now: float) -> dict[str, Path]:
    """Three teacher outputs of 1 kB used 40, 10 and 1 day(s) ago, features, a model, an old
    interrupted write, a fresh one (maybe in progress) and a file that is not ours."""
    (root / "features").mkdir(parents=True)
    files = {
        "old": root / "teacher-old.npy",
        "mid": root / "teacher-mid.npy",
        "new": root / "teacher-new.npy",
        "features": root / "features" / "abc-def.npy",
        "model": root / "teachers" / "model-k.joblib",
        "stale_partial": root / "tmpa.partial",
        "fresh_partial": root / "tmpb.partial",
        "foreign": root / "notes.txt",
    }
    files["model"].parent.mkdir()
    for path in files.values():
        path.write_bytes(b"x" * 1024)
    for name, days in {"old": 40, "mid": 10, "new": 1, "features": 5, "model": 20, "stale_partial": 2, "foreign": 400}.items():
        _aged(files[name], days, now)
    return files


def test_prune_by_age_removes_only_stale_stillroom_files(tmp_path: Path) -> None:
    import time

    from stillroom.cache import entries, prune

    now = time.time()
    files = _filled_cache(tmp_path, now)
    assert {e.kind for e in entries(tmp_path)} == {"teacher outputs", "features", "teacher model", "partial write"}
    planned = prune(tmp_path, older_than_days=15, dry_run=True, now=now)
    assert {e.path for e in planned} == {files["old"], files["model"], files["stale_partial"]}
    assert all(p.exists() for p in files.values())  # a dry run removes nothing
    prune(tmp_path, older_than_days=15, now=now)
    left = {p for p in files.values() if p.exists()}
    assert left == {files["mid"], files["new"], files["features"], files["fresh_partial"], files["foreign"]}


def test_prune_to_a_size_budget_drops_least_recently_used_first(tmp_path: Path) -> None:
    import time

    from stillroom.cache import cached_outputs, prune

    now = time.time()
    files = _filled_cache(tmp_path, now)
    np.save(files["old"], np.arange(3.0))  # a real entry, then a hit: the oldest becomes the most recent
    _aged(files["old"], 40, now)
    cached_outputs(tmp_path, "old", lambda: 1 / 0)
    removed = prune(tmp_path, max_bytes=2 * 1024 + 200, now=time.time())
    kept = {p for p in files.values() if p.exists()}
    assert {files["old"], files["new"], files["features"]} <= kept  # used just now, a day ago, 5 days ago
    assert files["foreign"] in kept and files["fresh_partial"] in kept  # not ours; maybe a write in progress
    assert {e.path for e in removed} == {files["model"], files["mid"], files["stale_partial"]}  # 20 and 10 days


def test_cache_commands(tmp_path: Path) -> None:
    import time

    from typer.testing import CliRunner

    from stillroom.cli import app

    _filled_cache(tmp_path, time.time())
    runner = CliRunner()
    info = runner.invoke(app, ["cache", "info", "--dir", str(tmp_path)])
    assert info.exit_code == 0 and "teacher outputs" in info.output and "7" in info.output
    dry = runner.invoke(app, ["cache", "prune", "--older-than", "15", "--dry-run", "--dir", str(tmp_path)])
    assert dry.exit_code == 0 and "would remove 3 file(s)" in dry.output and (tmp_path / "teacher-old.npy").exists()
    unasked = runner.invoke(app, ["cache", "prune", "--max-size", "3KB", "--dir", str(tmp_path)])  # no terminal to ask on
    assert unasked.exit_code == 2 and "add --yes" in unasked.output and (tmp_path / "teacher-old.npy").exists()
    declined = runner.invoke(app, ["cache", "prune", "--max-size", "3KB", "--dir", str(tmp_path)], input="n\n")
    assert (tmp_path / "teacher-old.npy").exists(), declined.output
    done = runner.invoke(app, ["cache", "prune", "--max-size", "3KB", "--yes", "--dir", str(tmp_path)])
    assert done.exit_code == 0 and "removed" in done.output and not (tmp_path / "teacher-old.npy").exists()
    bad_args = (
        ["cache", "prune", "--dir", str(tmp_path)],
        ["cache", "prune", "--max-size", "5parsecs", "--dir", str(tmp_path)],
        ["cache", "prune", "--max-size", "5", "--yes", "--dir", str(tmp_path)],  # 5 what? a bare number meant bytes
    )
    for bad in bad_args:
        result = runner.invoke(app, bad)
        assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
