"""The LightGBM student: a few hundred trees fitted to teacher probabilities.

LightGBM's ``cross_entropy`` objective accepts targets in [0, 1], so the student minimizes
the cross-entropy to the blended soft targets (teacher probabilities mixed with the hard
labels) directly: no custom loss, no sample duplication. The same class trained on 0/1
labels is the no-teacher baseline. The model is logged as LightGBM's own text format.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
from stillroom.errors import ConfigError
from stillroom.protocols import ModelDescription, NativeModel

DEFAULTS: dict[str, Any] = {
    "n_estimators": 300,
    "num_leaves": 31,
    "learning_rate": 0.05,
    "min_child_samples": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "early_stopping_rounds": 30,
    "num_threads": 0,
}
MAX_TREES = 1000


class LightGBMStudent:
    """A LightGBM booster trained on soft targets (distilled) or hard labels (baseline)."""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown config field 'student.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
        self.params = DEFAULTS | params
        if not 1 <= int(self.params["n_estimators"]) <= MAX_TREES:
            raise ConfigError(f"invalid config field 'student.params.n_estimators': must be in 1..{MAX_TREES}")
        self.seed = seed
        self.booster: lgb.Booster | None = None

    def _train_params(self) -> dict[str, Any]:
        p = {k: v for k, v in self.params.items() if k not in ("n_estimators", "early_stopping_rounds")}
        return p | {"objective": "cross_entropy", "seed": self.seed, "deterministic": True, "verbosity": -1}

    def fit(self, X: Any, targets: np.ndarray, X_valid: Any | None = None, targets_valid: np.ndarray | None = None) -> LightGBMStudent:
        train = lgb.Dataset(X, label=np.clip(targets, 0.0, 1.0), free_raw_data=True)
        callbacks = []
        valid_sets = []
        if X_valid is not None and targets_valid is not None and self.params["early_stopping_rounds"]:
            valid_sets = [lgb.Dataset(X_valid, label=np.clip(targets_valid, 0.0, 1.0), reference=train)]
            callbacks.append(lgb.early_stopping(int(self.params["early_stopping_rounds"]), verbose=False))
        booster = lgb.train(
            self._train_params(), train, num_boost_round=int(self.params["n_estimators"]), valid_sets=valid_sets, callbacks=callbacks
        )
        # keep only the trees up to the best iteration: what is measured is what is shipped
        self.booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration or None))
        return self

    def _fitted(self) -> lgb.Booster:
        if self.booster is None:
            raise RuntimeError("student is not fitted")
        return self.booster

    def predict(self, X: Any) -> np.ndarray:
        return self._fitted().predict(X)

    def describe(self) -> ModelDescription:
        booster = self._fitted()
        trees = booster.num_trees()
        leaves = int(sum(t["num_leaves"] for t in booster.dump_model()["tree_info"]))
        return ModelDescription(
            name="lightgbm-student",
            kind="LightGBM booster (cross-entropy on soft targets)",
            n_parameters=2 * leaves - trees,  # nodes: leaves + internal splits
            size_bytes=len(booster.model_to_string().encode()),
            details={"trees": trees, "leaves": leaves},
        )

    def native_model(self) -> NativeModel:
        return NativeModel("lightgbm", self._fitted())
