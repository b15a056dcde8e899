"""The heavy default teacher: a soft-voting ensemble of strong tabular models.

This is the kind of champion a fraud team runs: hundreds of deep trees from two forest
families plus gradient boosting and a linear model, averaged. It is accurate and slow, and
that is exactly why it is distilled. Any other teacher can be named by URI instead
(``teacher.uri: models:/fraud-champion@prod`` or an estimator file).

A trained ensemble is kept in the cache directory (``STILLROOM_CACHE_DIR``, default
``~/.cache/stillroom``) under :func:`~stillroom.contract.teacher_cache_key`: its parameters,
seed, feature list, label, task type and training data, so a second run with another recipe or
student reuses it, and one with another label or feature list trains a new one; ``teacher.params.cache: false`` turns
that off.
"""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stillroom.contract import DataBundle, EstimatorTeacher, cached_model, console, default_cache_dir, teacher_cache_key

DEFAULTS: dict[str, Any] = {
    "members": ["random_forest", "extra_trees", "gradient_boosting", "logistic"],
    "n_trees": 300,
    "max_depth": None,
    "min_samples_leaf": 2,
    "boosting_iterations": 300,
    "learning_rate": 0.05,
    "n_jobs": -1,
    "cache": True,
}


def _members(p: dict[str, Any], seed: int) -> list[tuple[str, Any]]:
    factories = {
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=p["n_trees"],
            max_depth=p["max_depth"],
            min_samples_leaf=p["min_samples_leaf"],
            n_jobs=p["n_jobs"],
            random_state=seed,
        ),
        "extra_trees": lambda: ExtraTreesClassifier(
            n_estimators=p["n_trees"],
            max_depth=p["max_depth"],
            min_samples_leaf=p["min_samples_leaf"],
            n_jobs=p["n_jobs"],
            random_state=seed + 1,
        ),
        "gradient_boosting": lambda: HistGradientBoostingClassifier(
            max_iter=p["boosting_iterations"], learning_rate=p["learning_rate"], early_stopping=False, random_state=seed + 2
        ),
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    }
    unknown = [m for m in p["members"] if m not in factories]
    if unknown:
        from stillroom.contract import ConfigError

        raise ConfigError(
            f"invalid config field 'teacher.params.members': unknown member(s) {unknown}; choose from {sorted(factories)}"
        )
    return [(m, factories[m]()) for m in p["members"]]


def train_ensemble_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> EstimatorTeacher:
    """Fit the ensemble on the labelled training split."""
    p = DEFAULTS | params
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        from stillroom.contract import ConfigError

        raise ConfigError(f"unknown config field(s) 'teacher.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
    # library versions belong to the identity: a model pickled by another scikit-learn is refitted, not trusted
    versions = {dist: md.version(dist) for dist in ("stillroom-fraud", "scikit-learn")}
    key = teacher_cache_key("fraud.ensemble", p, seed, bundle, versions=versions)  # features, label, task type, data

    def fit() -> VotingClassifier:
        model = VotingClassifier(_members(p, seed), voting="soft", n_jobs=1)
        return model.fit(bundle.X(bundle.train), bundle.y(bundle.train))

    model, hit = cached_model(default_cache_dir() / "teachers", key, fit) if p["cache"] else (fit(), False)
    if hit:
        console.log(f"teacher: the same ensemble (key {key}) was trained before; taken from the cache")
    return EstimatorTeacher(
        model, name="fraud-ensemble", kind="soft-voting ensemble (" + ", ".join(p["members"]) + ")", identity=key
    )
