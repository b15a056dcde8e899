"""Plots write real PNG files and leave no pyplot state behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.metrics import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    teacher = np.clip(0.4 * y + rng.uniform(0, 0.6, 400), 0, 1)
    return y, {"teacher": teacher, "student": np.clip(teacher + rng.normal(0, 0.05, 400), 0, 1)}


def _assert_png(path: Path, returned: Path) -> None:
    assert Path(returned) == path
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC


def _no_pyplot_figures() -> None:
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_roc_pr_curves(tmp_path: Path, scores: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    y, s = scores
    path = tmp_path / "nested" / "roc_pr.png"
    _assert_png(path, plots.roc_pr_curves(y, s, path))
    _no_pyplot_figures()


def test_reliability_diagram(tmp_path: Path, scores: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    y, s = scores
    path = tmp_path / "reliability.png"
    _assert_png(path, plots.reliability_diagram(y, s, path, n_bins=10))


def test_fidelity_scatter_subsamples(tmp_path: Path, scores: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    _, s = scores
    path = tmp_path / "fidelity.png"
    _assert_png(path, plots.fidelity_scatter(s["teacher"], s["student"], path, threshold=0.5, max_points=100))
    t, st = plots._sample(s["teacher"], s["student"], 100, seed=0)
    assert len(t) == len(st) == 100
    pairs = set(zip(s["teacher"].tolist(), s["student"].tolist(), strict=True))
    assert all(pair in pairs for pair in zip(t.tolist(), st.tolist(), strict=True))  # rows kept paired


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame({"segment": ["a", "b", "c"], "tpr": [0.5, 0.7, 0.6]}),
        pd.DataFrame({"segment": ["a", "b"] * 2, "model": ["teacher"] * 2 + ["student"] * 2, "tpr": [0.5, 0.7, 0.45, 0.72]}),
    ],
    ids=["single", "per-model"],
)
def test_subgroup_bars(tmp_path: Path, table: pd.DataFrame) -> None:
    path = tmp_path / "subgroups.png"
    _assert_png(path, plots.subgroup_bars(table, "tpr", "segment", path))


def test_score_histograms(tmp_path: Path, scores: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    _, s = scores
    path = tmp_path / "hist.png"
    _assert_png(path, plots.score_histograms(s, path))
    _no_pyplot_figures()
