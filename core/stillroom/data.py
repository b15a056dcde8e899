"""The data a vertical hands the pipeline: splits, an optional unlabelled pool, lineage.

Splits are tabular (pandas) for the tabular verticals; ``features`` names the model inputs
and ``label`` the target column, so the core can slice inputs and labels without knowing the
domain. ``group`` (optional) names a column for subgroup rates, ``time`` one for per-day
metrics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def frame_digest(df: pd.DataFrame) -> str:
    """A stable content digest of a data frame (values + column names), 16 hex chars.

    Used as the dataset digest in lineage and as a cache key for teacher outputs.
    """
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    h = hashlib.sha256(hashed.tobytes())
    h.update("\x1f".join(map(str, df.columns)).encode())
    return h.hexdigest()[:16]


@dataclass
class Split:
    """One split of the data with its role (train / validation / test / unlabelled)."""

    name: str
    frame: pd.DataFrame

    @property
    def n_rows(self) -> int:
        return len(self.frame)


@dataclass
class DataBundle:
    """Everything the pipeline needs from a dataset hook."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    label: str
    unlabelled: pd.DataFrame | None = None
    group: str | None = None
    time: str | None = None
    source: str = "unknown"
    details: dict[str, Any] = field(default_factory=dict)

    def X(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model inputs of a split, in the feature order the models were trained on."""
        return frame[self.features]

    def y(self, frame: pd.DataFrame) -> np.ndarray:
        """Hard labels of a split as int array."""
        return frame[self.label].to_numpy().astype(int)

    def splits(self) -> dict[str, pd.DataFrame]:
        """Named splits, the unlabelled pool included when present."""
        out = {"train": self.train, "validation": self.validation, "test": self.test}
        if self.unlabelled is not None and len(self.unlabelled):
            out["unlabelled"] = self.unlabelled
        return out

    def lineage(self) -> dict[str, Any]:
        """Source, digest and row count of every split (logged with the run)."""
        return {
            "source": self.source,
            "features": list(self.features),
            "label": self.label,
            "splits": {name: {"rows": int(len(df)), "digest": frame_digest(df)} for name, df in self.splits().items()},
            **self.details,
        }


def validate_features(frame: pd.DataFrame, features: list[str], where: str) -> None:
    """Model inputs must exist, be numeric and finite; say which column and split is wrong."""
    from .errors import DataError

    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing feature column(s) {missing}")
    for col in features:
        series = frame[col]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise DataError(f"{where}: feature column {col!r} is not numeric (dtype {series.dtype})")
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: feature column {col!r} has {int(bad.sum())} NaN/inf value(s), first at row {row}")


def validate_bundle(bundle: DataBundle) -> None:
    """Every split non-empty, labelled splits binary, every feature numeric and finite."""
    from .errors import DataError

    for name, frame in bundle.splits().items():
        if len(frame) == 0:
            raise DataError(f"the {name} split is empty")
        validate_features(frame, bundle.features, f"{name} split")
        if name == "unlabelled":
            continue
        if bundle.label not in frame.columns:
            raise DataError(f"{name} split: missing label column {bundle.label!r}")
        labels = set(pd.unique(frame[bundle.label]))
        if not labels <= {0, 1}:
            raise DataError(f"{name} split: label column {bundle.label!r} must be 0/1, found {sorted(map(str, labels))[:5]}")
    if len(set(bundle.y(bundle.train))) < 2:
        raise DataError(f"train split: label column {bundle.label!r} has a single class")


def synthetic_example(X: pd.DataFrame, n: int = 5, seed: int = 0) -> pd.DataFrame:
    """Rows drawn uniformly inside each column's range: a schema example that is no real row.

    MLflow stores the input example in clear; a real transaction, patient or molecule must
    never leave the data that way.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for col in X.columns:
        values = X[col].to_numpy(dtype=float)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        draw = rng.uniform(low, high, size=n) if high > low else np.full(n, low)
        out[col] = np.round(draw).astype(X[col].dtype) if pd.api.types.is_integer_dtype(X[col]) else draw.astype(X[col].dtype)
    return pd.DataFrame(out, columns=list(X.columns))
