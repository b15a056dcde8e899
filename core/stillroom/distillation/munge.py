"""MUNGE: synthetic transfer points for model compression.

Bucila, Caruana and Niculescu-Mizil, "Model Compression", KDD 2006, section 3.3 (MUNGE).

Why: a student can only mimic the teacher where it is shown the teacher's outputs. The
labelled data is usually too small to pin the teacher's function down, and uniform random
points fall mostly where no real example lives (so the student learns the teacher's
behaviour in irrelevant regions). MUNGE creates *label-free* points by locally perturbing
each real example towards its nearest neighbour: the points stay near the data manifold, so
labelling them with the teacher shows the student the teacher's function where the data
lives, which is what it will be scored on.

Algorithm, per pass over the seed set: for each example ``e`` take its nearest neighbour
``e'``; for each attribute ``a``, with probability ``p``: for a continuous attribute draw
``e_a ~ Normal(e'_a, |e_a - e'_a| / s)``, for a nominal attribute take ``e'_a``. Passes are
repeated until ``size`` rows are produced (``k`` passes give ``k * n`` rows).

Deviation from the paper, on purpose: the paper modifies ``e`` and ``e'`` in place while
walking the set, so later examples see earlier perturbations. Here every synthetic row is
drawn from the *original* pair ``(e, e')`` and only ``e`` is emitted. The paper's symmetric
update of ``e'`` is the same draw with roles exchanged, and ``e'`` is itself a seed of the
pass, so the points come from the same local distributions; what is lost is only the
order-dependent compounding of perturbations, and what is gained is independence of rows,
so the whole set is a few vectorised numpy operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from ..errors import DataError

__all__ = ["munge"]


@dataclass(frozen=True)
class _Columns:
    """The split of a frame's columns into continuous (perturbed) and nominal (swapped)."""

    continuous: list[str]
    categorical: list[str]


def munge(
    X: pd.DataFrame,
    size: int,
    p: float = 0.5,
    s: float = 10.0,
    categorical: Sequence[str] = (),
    *,
    rng: np.random.Generator,
    max_seed_rows: int | None = None,
) -> pd.DataFrame:
    """Return ``size`` MUNGE rows with the columns and dtypes of ``X`` (see module doc).

    ``categorical`` names nominal columns (0/1 mismatch distance, values swapped);
    non-numeric and boolean columns are treated as nominal even if not listed, because
    sampling a Normal around them has no meaning. Continuous columns are standardised for
    the neighbour search, so no feature dominates by its unit. Integer columns are rounded
    back to integers and every continuous column is clipped to its observed range, so e.g.
    counts stay non-negative and the student is never asked about impossible values.

    ``max_seed_rows`` caps the seed set (random subsample, taken with ``rng``). The exact
    neighbour search is the only super-linear step: with a handful of features (kd-tree)
    100k seeds take about a second, but with 15+ search dimensions (one-hot columns count)
    sklearn falls back to brute force and 100k seeds take 10-30 s on a laptop, while
    20k seeds take about one second; a few tens of thousands of seeds already cover the
    manifold, and ``size`` can still be much larger than the seed set.

    Raises :class:`~stillroom.errors.DataError` for an unusable frame (empty, fewer than
    two rows, NaN/inf, unknown categorical column) and :class:`ValueError` for bad
    parameters (``p`` outside ``(0, 1]``, ``s <= 0``, negative ``size``).
    """
    _check_params(size, p, s, max_seed_rows)
    columns = _split_columns(X, categorical)
    _check_frame(X, columns)
    seeds = _seed_rows(X, max_seed_rows, rng)
    neighbour = _nearest_neighbours(seeds, columns)
    row = _seed_indices(len(seeds), size, rng)
    partner = neighbour[row]
    swap = rng.random((size, X.shape[1])) < p
    out: dict[str, pd.Series] = {}
    for j, name in enumerate(X.columns):
        if name in columns.categorical:
            out[name] = _swap_nominal(seeds[name], row, partner, swap[:, j])
        else:
            out[name] = _perturb_continuous(seeds[name], X[name], row, partner, swap[:, j], s, rng)
    return pd.DataFrame(out, columns=X.columns)


def _check_params(size: int, p: float, s: float, max_seed_rows: int | None) -> None:
    """Reject parameters that would silently produce a degenerate set."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"munge: size must be a non-negative integer, got {size!r}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"munge: p (swap probability) must be in (0, 1], got {p!r}")
    if not s > 0.0:
        raise ValueError(f"munge: s (spread divisor) must be > 0, got {s!r}")
    if max_seed_rows is not None and max_seed_rows < 2:
        raise ValueError(f"munge: max_seed_rows must be >= 2, got {max_seed_rows!r}")


def _is_nominal(series: pd.Series) -> bool:
    """Whether a column can only be swapped, not perturbed (non-numeric or boolean)."""
    return pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series)


def _split_columns(X: pd.DataFrame, categorical: Sequence[str]) -> _Columns:
    """Declared nominal columns plus auto-detected ones; the rest are continuous."""
    if isinstance(categorical, str):
        categorical = [categorical]
    missing = [c for c in categorical if c not in X.columns]
    if missing:
        raise DataError(f"munge: categorical columns not in the frame: {missing}")
    declared = set(categorical)
    nominal = [c for c in X.columns if c in declared or _is_nominal(X[c])]
    return _Columns(continuous=[c for c in X.columns if c not in nominal], categorical=nominal)


def _check_frame(X: pd.DataFrame, columns: _Columns) -> None:
    """MUNGE needs at least one neighbour pair and finite values to compute distances."""
    if X.shape[1] == 0 or len(X) == 0:
        raise DataError("munge: the seed frame is empty (no rows or no columns)")
    if len(X) < 2:
        raise DataError("munge: needs at least 2 seed rows (each row needs a neighbour)")
    nan_cols = [str(c) for c in X.columns[X.isna().any().to_numpy()]]
    if nan_cols:
        raise DataError(f"munge: NaN/missing values in columns {nan_cols}; impute or drop them")
    if columns.continuous:
        values = X[columns.continuous].to_numpy(dtype=np.float64)
        inf_cols = [c for c, bad in zip(columns.continuous, ~np.isfinite(values).all(axis=0), strict=True) if bad]
        if inf_cols:
            raise DataError(f"munge: infinite values in columns {inf_cols}")


def _seed_rows(X: pd.DataFrame, max_seed_rows: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """The seed set, positionally indexed; a random subsample when it exceeds the cap."""
    if max_seed_rows is not None and len(X) > max_seed_rows:
        X = X.iloc[np.sort(rng.choice(len(X), size=max_seed_rows, replace=False))]
    return X.reset_index(drop=True)


def _search_space(seeds: pd.DataFrame, columns: _Columns) -> np.ndarray:
    """Embed rows so that Euclidean distance is the paper's mixed distance.

    Continuous columns are z-scored; nominal columns are one-hot scaled by 1/sqrt(2), so a
    mismatch adds exactly 1 to the squared distance and a match adds 0.
    """
    parts: list[np.ndarray] = []
    if columns.continuous:
        cont = seeds[columns.continuous].to_numpy(dtype=np.float64)
        std = cont.std(axis=0)
        parts.append((cont - cont.mean(axis=0)) / np.where(std > 0, std, 1.0))
    for name in columns.categorical:
        codes, uniques = pd.factorize(seeds[name])
        onehot = np.zeros((len(seeds), len(uniques)), dtype=np.float64)
        onehot[np.arange(len(seeds)), codes] = np.sqrt(0.5)
        parts.append(onehot)
    return np.hstack(parts)


def _nearest_neighbours(seeds: pd.DataFrame, columns: _Columns) -> np.ndarray:
    """Index of each seed's nearest *other* seed (a duplicate row counts as a neighbour)."""
    space = _search_space(seeds, columns)
    nn = NearestNeighbors(n_neighbors=2, algorithm="auto", n_jobs=-1).fit(space)
    idx = nn.kneighbors(space, return_distance=False)
    own = np.arange(len(seeds))
    # With exact duplicates the row itself may come second; then the first is the partner.
    return np.where(idx[:, 0] == own, idx[:, 1], idx[:, 0])


def _seed_indices(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` seed positions: whole shuffled passes over the seeds, the last one partial.

    Shuffling each pass keeps a partial last pass an unbiased sample of the seeds.
    """
    passes = -(-size // n)
    return rng.permuted(np.tile(np.arange(n), (passes, 1)), axis=1).ravel()[:size]


def _swap_nominal(column: pd.Series, row: np.ndarray, partner: np.ndarray, swap: np.ndarray) -> pd.Series:
    """Take the neighbour's value where swapped; ``take`` keeps the dtype (category, str ...)."""
    return column.take(np.where(swap, partner, row)).reset_index(drop=True)


def _perturb_continuous(
    column: pd.Series,
    observed: pd.Series,
    row: np.ndarray,
    partner: np.ndarray,
    swap: np.ndarray,
    s: float,
    rng: np.random.Generator,
) -> pd.Series:
    """Normal(e'_a, |e_a - e'_a| / s) where swapped, e_a elsewhere; back to the column dtype."""
    values = column.to_numpy(dtype=np.float64)
    e, e_prime = values[row], values[partner]
    drawn = rng.normal(e_prime, np.abs(e - e_prime) / s)
    out = np.clip(np.where(swap, drawn, e), float(observed.min()), float(observed.max()))
    if pd.api.types.is_integer_dtype(column):
        out = np.rint(out)
    return pd.Series(out, dtype=column.dtype)
