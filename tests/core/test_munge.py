"""MUNGE transfer points: shape, determinism, ranges, closeness to the data, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

from stillroom.distillation.munge import munge
from stillroom.errors import DataError


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Two clusters on a curve (a thin manifold), a count, a categorical and a flag."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 3 * np.pi, n)
    return pd.DataFrame(
        {
            "x": np.cos(t) * t + rng.normal(0, 0.05, n),
            "y": np.sin(t) * t + rng.normal(0, 0.05, n),
            "amount": rng.gamma(2.0, 50.0, n).astype(np.float32),
            "count": rng.poisson(2, n).astype(np.int64),
            "channel": pd.Categorical(rng.choice(["web", "pos", "atm"], n)),
            "merchant": rng.choice([10, 20, 30], n),
            "flag": rng.random(n) < 0.2,
        }
    )


def test_shape_columns_and_dtypes_are_preserved() -> None:
    X = _frame()
    out = munge(X, 1000, categorical=["merchant"], rng=np.random.default_rng(1))
    assert out.shape == (1000, X.shape[1])
    assert list(out.columns) == list(X.columns)
    assert out.dtypes.equals(X.dtypes)
    assert out.index.equals(pd.RangeIndex(1000))


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    X = _frame()
    a = munge(X, 300, rng=np.random.default_rng(7))
    b = munge(X, 300, rng=np.random.default_rng(7))
    c = munge(X, 300, rng=np.random.default_rng(8))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_values_stay_inside_observed_ranges_and_integers_stay_integral() -> None:
    X = _frame()
    out = munge(X, 2000, p=1.0, s=0.5, rng=np.random.default_rng(2))  # wide spread: clipping matters
    for col in ["x", "y", "amount", "count"]:
        assert out[col].min() >= X[col].min()
        assert out[col].max() <= X[col].max()
    assert (out["count"] >= 0).all()


def test_categorical_values_come_from_the_observed_set() -> None:
    X = _frame()
    out = munge(X, 1000, categorical=["merchant"], rng=np.random.default_rng(3))
    assert set(out["channel"]) <= set(X["channel"])
    assert set(out["merchant"]) <= set(X["merchant"])
    assert set(out["flag"]) <= {True, False}


def test_synthetic_points_lie_near_the_data() -> None:
    X = _frame(n=600)[["x", "y"]]
    out = munge(X, 3000, rng=np.random.default_rng(4))
    rng = np.random.default_rng(5)
    uniform = rng.uniform(X.min().to_numpy(), X.max().to_numpy(), size=(3000, 2))
    nn = NearestNeighbors(n_neighbors=1).fit(X.to_numpy())
    d_munge = nn.kneighbors(out.to_numpy())[0].mean()
    d_uniform = nn.kneighbors(uniform)[0].mean()
    assert d_munge < d_uniform / 5


def test_size_not_a_multiple_of_the_seed_set_and_zero() -> None:
    X = _frame(n=50)
    assert len(munge(X, 123, rng=np.random.default_rng(0))) == 123
    empty = munge(X, 0, rng=np.random.default_rng(0))
    assert empty.shape == (0, X.shape[1]) and list(empty.columns) == list(X.columns)


def test_p_one_moves_every_continuous_value_towards_the_neighbour() -> None:
    # Two far-apart pairs: each row's neighbour is its pair, so with p=1 and a tiny spread
    # every synthetic value is (almost) the partner's value, never a blend across pairs.
    X = pd.DataFrame({"a": [0.0, 1.0, 100.0, 101.0]})
    out = munge(X, 400, p=1.0, s=1e6, rng=np.random.default_rng(0))
    assert np.allclose(np.sort(out["a"].round(3).unique()), [0.0, 1.0, 100.0, 101.0])


def test_small_p_changes_few_values() -> None:
    X = _frame()[["x", "y"]]
    out = munge(X, len(X), p=0.01, rng=np.random.default_rng(0))
    unchanged = out.isin({"x": X["x"].tolist(), "y": X["y"].tolist()}).to_numpy().mean()
    assert unchanged > 0.95


def test_max_seed_rows_bounds_the_seed_set() -> None:
    X = _frame(n=1000)
    out = munge(X, 500, p=0.01, max_seed_rows=20, rng=np.random.default_rng(0))
    # With p tiny nearly every row is a copy of one of the 20 seeds.
    assert out[["x", "y"]].drop_duplicates().shape[0] < 60


def test_duplicate_rows_are_neighbours_of_each_other() -> None:
    X = pd.DataFrame({"a": [1.0, 1.0, 5.0, 5.0], "b": [2, 2, 7, 7]})
    out = munge(X, 100, p=1.0, rng=np.random.default_rng(0))
    assert set(map(tuple, out.to_numpy().tolist())) <= {(1.0, 2.0), (5.0, 7.0)}


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame(), "empty"),
        (pd.DataFrame({"a": pd.Series([], dtype=float)}), "empty"),
        (pd.DataFrame({"a": [1.0]}), "at least 2"),
        (pd.DataFrame({"a": [1.0, np.nan, 3.0]}), "NaN"),
        (pd.DataFrame({"a": [1.0, np.inf, 3.0]}), "infinite"),
        (pd.DataFrame({"a": [1.0, 2.0], "c": ["u", None]}), "NaN"),
    ],
)
def test_unusable_frames_raise_data_error(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        munge(frame, 10, rng=np.random.default_rng(0))


def test_unknown_categorical_column_raises_data_error() -> None:
    with pytest.raises(DataError, match="nope"):
        munge(_frame(), 10, categorical=["nope"], rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [{"p": 0.0}, {"p": -0.1}, {"p": 1.5}, {"s": 0.0}, {"s": -1.0}, {"size": -1}, {"max_seed_rows": 1}],
)
def test_bad_parameters_raise_value_error(kwargs: dict[str, float]) -> None:
    args = {"size": 10, **kwargs}
    with pytest.raises(ValueError):
        munge(_frame(), rng=np.random.default_rng(0), **args)
