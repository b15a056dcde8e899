"""Teachers the core can load without a vertical: MLflow model URIs and estimator files.

A bank's champion model usually already lives in MLflow (``models:/fraud-champion@prod``)
or as a scikit-learn-compatible estimator file from the modelling team; either can teach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import tracking
from .._runtime import sha256_file
from ..contract.estimator import EstimatorTeacher, estimator_parameters, pickled_size
from ..contract.protocols import ModelDescription, NativeModel
from ..errors import ModelLoadError


class MlflowTeacher:
    """A teacher that already lives in MLflow; it is linked, not logged again."""

    def __init__(self, uri: str) -> None:
        self._predict, self.facts = tracking.load_teacher_model(uri)
        self.uri = self.facts.get("pinned_uri", uri)

    @property
    def model_id(self) -> str | None:
        return self.facts.get("model_id")

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self._predict(X), dtype=float)

    def describe(self) -> ModelDescription:
        obj = self.facts.get("object")
        return ModelDescription(
            name=self.facts.get("name", self.uri),
            kind=f"mlflow:{self.facts.get('flavor')}",
            n_parameters=estimator_parameters(obj) if obj is not None else 0,
            size_bytes=pickled_size(obj) if obj is not None else 0,
            uri=self.uri,
            version=self.facts.get("version"),
        )

    def native_model(self) -> NativeModel | None:
        return None


def load_estimator_file(path: str) -> EstimatorTeacher:
    """A teacher from a joblib/pickle file. Only load files you trust: pickle runs code."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"teacher file {p} does not exist")
    try:
        import joblib

        est = joblib.load(p)
    except Exception as exc:
        raise ModelLoadError(f"teacher file {p} is not a readable estimator: {type(exc).__name__}: {exc}") from None
    return EstimatorTeacher(est, name=p.stem, uri=str(p.resolve()), kind=f"file:{type(est).__name__}", identity=sha256_file(p))


def load_teacher_uri(uri: str) -> Any:
    """A teacher from ``models:/``, ``runs:/`` or a file path."""
    if uri.startswith(("models:/", "runs:/", "m-")):
        return MlflowTeacher(uri if not uri.startswith("m-") else f"models:/{uri}")
    if "://" in uri or uri.startswith(("models:", "runs:")):
        raise ModelLoadError(f"unknown model URI {uri!r}: use models:/NAME@ALIAS, runs:/RUN/PATH or a file path")
    return load_estimator_file(uri)
