"""The LightGBM student: a hundred shallow trees fitted to the teacher's behaviour.

The student minimises the response-based distillation loss of :mod:`stillroom.targets`
(Hinton et al.: the teacher's temperature-softened probabilities blended with hard labels)
through its gradient and Hessian, as a custom LightGBM objective. The same class trained on
labels alone is the no-teacher baseline (the loss is then plain cross-entropy).

Two settings matter more than they look, both measured on the fraud benchmark:

* ``max_delta_step`` caps each leaf's output. Boosting log-loss from the base rate of a rare
  class, the Hessian is tiny and one Newton step can push a leaf by 10+ logits; without the
  cap a student (and the baseline) lost up to 6 points of AP to that overshoot.
* ``max_bin`` is high (4095 rather than LightGBM's 255). Histogram bins are placed by the
  bulk of legitimate rows, leaving few split points where fraud lives; a forest teacher splits
  on exact values. With 255 bins the student kept 97% of a forest teacher's AP, with 4095
  all of it. Prediction speed does not depend on it.

What is shipped is an ordinary LightGBM binary model in LightGBM's own text format: boosting
starts from the best constant logit (baked into the first tree's leaves) and the model
declares the binary objective, so ``predict`` returns probabilities on the teacher's scale
with no stillroom code needed at scoring time. Every fit checks that the shipped model
reproduces the trained one exactly.
"""

from __future__ import annotations

import re
from typing import Any

import lightgbm as lgb
import numpy as np
from scipy.special import expit

from stillroom.contract import ConfigError, ModelDescription, NativeModel, SoftTargets, training_threads

DEFAULTS: dict[str, Any] = {
    "n_estimators": 100,
    "num_leaves": 15,
    "max_depth": -1,
    "learning_rate": 0.15,
    "min_child_samples": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_delta_step": 5.0,
    "max_bin": 4095,
    "early_stopping_rounds": 30,
    "num_threads": 0,
}
MAX_TREES = 1000
BINARY_OBJECTIVE = "objective=binary sigmoid:1"
SELF_CHECK_ROWS = 2000
SELF_CHECK_TOLERANCE = 1e-9


class LightGBMStudent:
    """A LightGBM booster trained on the distillation loss (student) or on labels (baseline)."""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown config field 'student.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
        self.params = DEFAULTS | params
        if not 1 <= int(self.params["n_estimators"]) <= MAX_TREES:
            raise ConfigError(f"invalid config field 'student.params.n_estimators': must be in 1..{MAX_TREES}")
        self.seed = seed
        self.booster: lgb.Booster | None = None
        self.loss = "not fitted"

    def _train_params(self, targets: SoftTargets) -> dict[str, Any]:
        p = {k: v for k, v in self.params.items() if k not in ("n_estimators", "early_stopping_rounds")}
        return p | {
            "num_threads": training_threads(int(self.params["num_threads"])),  # 0: the usable cores (a search trial: its share)
            "objective": lambda z, _data: targets.gradient(z),
            "metric": "None",
            "seed": self.seed,
            "deterministic": True,
            "verbosity": -1,
        }

    def fit(
        self, X: Any, targets: SoftTargets, X_valid: Any | None = None, targets_valid: SoftTargets | None = None
    ) -> LightGBMStudent:
        init = targets.initial_logit()
        train = lgb.Dataset(X, label=targets.blended(), init_score=np.full(len(targets), init), free_raw_data=True)
        valid_sets, callbacks, feval = [], [], None
        if X_valid is not None and targets_valid is not None and self.params["early_stopping_rounds"]:
            valid_sets = [
                lgb.Dataset(X_valid, label=targets_valid.blended(), init_score=np.full(len(targets_valid), init), reference=train)
            ]
            feval = lambda z, _data: ("distillation_loss", targets_valid.loss(z), False)  # noqa: E731
            callbacks.append(lgb.early_stopping(int(self.params["early_stopping_rounds"]), verbose=False))
        trained = lgb.train(
            self._train_params(targets),
            train,
            num_boost_round=int(self.params["n_estimators"]),
            valid_sets=valid_sets,
            feval=feval,
            callbacks=callbacks,
        )
        # keep only the trees up to the best iteration: what is measured is what is shipped
        self.booster = shippable_booster(trained, init, trained.best_iteration or None, X)
        self.loss = (
            f"response-based distillation loss (temperature {targets.temperature:g}, alpha {targets.alpha:g})"
            if targets.teacher is not None
            else "cross-entropy to hard labels (no teacher)"
        )
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
            kind=f"LightGBM booster, {self.loss}",
            n_parameters=2 * leaves - trees,  # nodes: leaves + internal splits
            size_bytes=len(booster.model_to_string().encode()),
            details={"trees": trees, "leaves": leaves},
        )

    def native_model(self) -> NativeModel:
        return NativeModel("lightgbm", self._fitted())


def shippable_booster(trained: lgb.Booster, init: float, num_iteration: int | None, X: Any) -> lgb.Booster:
    """A plain LightGBM binary model equal to ``sigmoid(init + trained raw score)``.

    A custom objective leaves a model that predicts raw margins from zero; a scoring job
    must get probabilities from the file alone. The starting logit is added to every leaf of
    the first tree (each row reaches exactly one of them) and the binary objective is declared,
    then the result is checked against the trained model on real rows.
    """
    booster = lgb.Booster(model_str=trained.model_to_string(num_iteration=num_iteration))
    first_tree_leaves = booster.dump_model(num_iteration=1)["tree_info"][0]["num_leaves"]
    for leaf in range(first_tree_leaves):
        booster.set_leaf_output(0, leaf, booster.get_leaf_output(0, leaf) + init)
    text, found = re.subn(r"^(max_feature_idx=\d+)$", rf"\1\n{BINARY_OBJECTIVE}", booster.model_to_string(), count=1, flags=re.M)
    if not found:
        raise RuntimeError("LightGBM model text has no max_feature_idx line; cannot declare the binary objective")
    shipped = lgb.Booster(model_str=text)
    sample = X.iloc[:SELF_CHECK_ROWS] if hasattr(X, "iloc") else X[:SELF_CHECK_ROWS]
    expected = expit(init + trained.predict(sample, raw_score=True, num_iteration=num_iteration))
    gap = float(np.max(np.abs(shipped.predict(sample) - expected))) if len(expected) else 0.0
    if gap > SELF_CHECK_TOLERANCE:
        raise RuntimeError(f"shipped LightGBM student differs from the trained one by {gap:.3g}")
    return shipped
