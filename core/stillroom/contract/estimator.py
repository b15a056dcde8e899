"""Any fitted scikit-learn-compatible estimator as a teacher, and how to size one.

A bank's champion is often a scikit-learn, LightGBM or XGBoost model with ``predict_proba``;
a vertical that trains such a teacher wraps it here instead of writing its own adapter.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from .protocols import ModelDescription, NativeModel


def estimator_parameters(est: Any) -> int:
    """A parameter count for tree ensembles (nodes) and linear/NN models (coefficients)."""
    total = 0
    if hasattr(est, "booster_"):
        est = est.booster_
    if hasattr(est, "trees_to_dataframe") and hasattr(est, "num_trees"):
        return int(len(est.trees_to_dataframe()))
    if hasattr(est, "tree_"):
        return int(est.tree_.node_count)
    for attr in ("estimators_", "named_estimators_"):
        members = getattr(est, attr, None)
        if members is not None:
            members = members.values() if isinstance(members, dict) else members
            for member in np.ravel(np.asarray(list(members), dtype=object)):
                total += estimator_parameters(member)
            return total
    if hasattr(est, "_predictors"):  # HistGradientBoosting
        return int(sum(len(p.nodes) for it in est._predictors for p in it))
    if hasattr(est, "coefs_"):
        return int(sum(c.size for c in est.coefs_) + sum(b.size for b in est.intercepts_))
    if hasattr(est, "coef_"):
        return int(np.size(est.coef_) + np.size(getattr(est, "intercept_", 0)))
    for step in getattr(est, "steps", []):
        total += estimator_parameters(step[1])
    return total


def pickled_size(obj: Any) -> int:
    """Bytes of the object serialized with pickle (a fair size for in-memory estimators)."""
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


class EstimatorTeacher:
    """Any fitted object with ``predict_proba`` (scikit-learn API) as a teacher."""

    def __init__(
        self, estimator: Any, name: str, uri: str | None = None, kind: str | None = None, identity: str | None = None
    ) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise ModelLoadError(f"teacher {name!r} has no predict_proba: {type(estimator).__name__}")
        self.estimator = estimator
        self.name = name
        self.uri = uri
        self.kind = kind or type(estimator).__name__
        self.identity = identity
        self._size: int | None = None

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(X))[:, 1]

    def describe(self) -> ModelDescription:
        if self._size is None:
            self._size = pickled_size(self.estimator)
        return ModelDescription(
            name=self.name,
            kind=self.kind,
            n_parameters=estimator_parameters(self.estimator),
            size_bytes=self._size,
            uri=self.uri,
            details={"identity": self.identity} if self.identity else {},
        )

    def native_model(self) -> NativeModel | None:
        return None if self.uri and self.uri.startswith("models:/") else NativeModel("sklearn", self.estimator)
