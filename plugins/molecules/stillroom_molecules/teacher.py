"""The in-plugin heavy teacher: an ensemble over rich molecular descriptors.

All ~217 RDKit 2D descriptors plus 2048 Morgan counts feed a LightGBM ensemble (differently
seeded boosters of 500 trees, two by default) and an ExtraTrees forest of 300 trees, averaged.
It is the kind of model a computational chemistry group trusts and cannot afford at screen
scale: the descriptors alone cost ~10 ms per molecule, the forest is tens of MB. On CPU it
trains in a minute where a graph network would take an hour, and it is a strong baseline on
MoleculeNet-size data (see bench/results/molecules.md for its numbers beside Chemprop's).

Every task type is supported: one model per output for regression (rows missing that label
are skipped), multilabel and mixed (each output as its kind says), class probabilities for
binary and multiclass. A trained
teacher is cached under :func:`~stillroom.contract.teacher_cache_key` (parameters, seed,
features, label columns, task type, training data).
"""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from stillroom.contract import (
    ConfigError,
    DataBundle,
    ModelDescription,
    NativeModel,
    as_task_output,
    cached_model,
    console,
    default_cache_dir,
    output_kinds,
    teacher_cache_key,
)

from .featurize import Featurizer, FeaturizerConfig
from .loaders import SMILES

DEFAULTS: dict[str, Any] = {
    "boosters": 2,
    "n_estimators": 500,
    "learning_rate": 0.03,
    "num_leaves": 31,
    "forest_trees": 300,
    "descriptors": "all",
    "n_bits": 2048,
    "n_jobs": 2,
    "cache": True,
}


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config field 'teacher.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
    p = DEFAULTS | params
    if int(p["boosters"]) < 0 or int(p["forest_trees"]) < 0 or int(p["boosters"]) + int(p["forest_trees"]) == 0:
        raise ConfigError("teacher.params: boosters and forest_trees must be >= 0 and not both 0")
    return p


class DescriptorEnsemble:
    """Per-output members fitted on descriptor + fingerprint features (picklable, cacheable)."""

    def __init__(self, p: dict[str, Any], task_type: str, seed: int, output_types: list[str] | None = None) -> None:
        self.p, self.task_type, self.seed = p, task_type, seed
        self.output_types = output_types  # a mixed task's kind per output
        self.members: list[list[Any]] = []  # per output
        self.n_classes = 0

    def _boosters(self, classify: bool, j: int) -> list[Any]:
        cls = lgb.LGBMClassifier if classify else lgb.LGBMRegressor
        return [
            cls(
                n_estimators=self.p["n_estimators"],
                learning_rate=self.p["learning_rate"],
                num_leaves=self.p["num_leaves"],
                subsample=0.8,
                subsample_freq=1,
                colsample_bytree=0.5,
                random_state=self.seed + 17 * j + b,
                n_jobs=1,  # LightGBM's OpenMP threads spin-wait on a shared box; the forest uses n_jobs
                verbosity=-1,
            )
            for b in range(int(self.p["boosters"]))
        ]

    def _forest(self, classify: bool, j: int) -> list[Any]:
        if not self.p["forest_trees"]:
            return []
        cls = ExtraTreesClassifier if classify else ExtraTreesRegressor
        return [
            cls(
                n_estimators=self.p["forest_trees"],
                max_features=0.3,
                min_samples_leaf=1,
                n_jobs=self.p["n_jobs"],
                random_state=self.seed + 17 * j + 99,
            )
        ]

    def fit(self, X: np.ndarray, Y: np.ndarray) -> DescriptorEnsemble:
        """``Y``: (n, k) float with NaN = missing (multiclass: (n, 1) class index)."""
        if self.task_type == "multiclass":
            self.n_classes = int(np.nanmax(Y)) + 1
        for j, kind in enumerate(self._kinds(Y.shape[1])):
            classify = kind != "regression"
            rows = ~np.isnan(Y[:, j])
            y = Y[rows, j].astype(int) if classify else Y[rows, j]
            members = self._boosters(classify, j) + self._forest(classify, j)
            self.members.append([m.fit(X[rows], y) for m in members])
        return self

    def _kinds(self, n_outputs: int) -> tuple[str, ...]:
        # getattr: an ensemble cached before mixed tasks existed has no output_types
        return output_kinds(self.task_type, n_outputs, getattr(self, "output_types", None))

    def predict(self, X: np.ndarray) -> np.ndarray:
        cols = []
        for members, kind in zip(self.members, self._kinds(len(self.members)), strict=True):
            if kind == "multiclass":
                return np.mean([m.predict_proba(X) for m in members], axis=0)
            if kind == "regression":
                cols.append(np.mean([m.predict(X) for m in members], axis=0))
            else:
                cols.append(np.mean([m.predict_proba(X)[:, 1] for m in members], axis=0))
        return np.column_stack(cols)

    def n_parameters(self) -> int:
        total = 0
        for members in self.members:
            for m in members:
                if hasattr(m, "booster_"):
                    total += int(len(m.booster_.trees_to_dataframe()))
                else:
                    total += int(sum(t.tree_.node_count for t in m.estimators_))
        return total


class EnsembleTeacher:
    """The fitted ensemble behind the Teacher protocol: SMILES frame in, task-shaped outputs out."""

    def __init__(self, model: DescriptorEnsemble, featurizer: Featurizer, identity: str) -> None:
        self.model, self.featurizer, self.identity = model, featurizer, identity
        self._size: int | None = None

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        # no feature cache here: the teacher's cost is part of what the run measures
        features = self.featurizer.transform(X[SMILES].tolist(), use_cache=False).toarray()
        return as_task_output(self.model.predict(features), self.model.task_type)

    def label(self, X: pd.DataFrame) -> np.ndarray:
        """Bulk labelling (the transfer set): descriptors of molecules featurised while training
        are reused. Only labelling takes this path; the run times the teacher through predict."""
        features = self.featurizer.transform(X[SMILES].tolist(), use_cache=True).toarray()
        return as_task_output(self.model.predict(features), self.model.task_type)

    def describe(self) -> ModelDescription:
        if self._size is None:
            import pickle

            self._size = len(pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL))
        p = self.model.p
        return ModelDescription(
            name="molecules-descriptor-ensemble",
            kind=f"{p['boosters']} LightGBM x {p['n_estimators']} trees + ExtraTrees x {p['forest_trees']} on RDKit descriptors",
            n_parameters=self.model.n_parameters(),
            size_bytes=self._size,
            details={"identity": self.identity, **self.featurizer.describe()},
        )

    def native_model(self) -> NativeModel | None:
        return None  # a research artifact; its identity (parameters, seed, data digest) is logged with the run


def train_descriptor_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> EnsembleTeacher:
    """Fit (or take from the cache) the ensemble on the labelled training split."""
    from .datasets import hard_matrix

    p = check_params(params)
    if bundle.reference == "teacher":
        raise ConfigError(
            "teacher molecules.descriptor_ensemble trains on labels, and data.reference 'teacher' means there are none: "
            "use a pre-trained teacher (teacher.name=molecules.admet, or teacher.uri=<an MLflow model taking SMILES>)"
        )
    featurizer = Featurizer(FeaturizerConfig(n_bits=int(p["n_bits"]), descriptors=p["descriptors"], n_jobs=int(p["n_jobs"])))
    task_type = bundle.details.get("task_type", "regression")
    output_types = bundle.details.get("output_types")
    train = bundle.train
    versions = {d: md.version(d) for d in ("stillroom-molecules", "scikit-learn", "lightgbm", "rdkit")}
    # the core's key (features, labels, task type, data) plus what the ensemble itself reads
    key = teacher_cache_key(
        "molecules.descriptor_ensemble",
        p,
        seed,
        bundle,
        versions=versions,
        reads=(task_type, output_types, bundle.details.get("targets")),
    )

    def fit() -> DescriptorEnsemble:
        X = featurizer.transform(train[SMILES].tolist()).toarray()  # dense: the ensemble was tuned on it
        return DescriptorEnsemble(p, task_type, seed, output_types).fit(X, hard_matrix(bundle, train))

    model, hit = cached_model(default_cache_dir() / "teachers", key, fit) if p["cache"] else (fit(), False)
    if hit:
        console.log(f"teacher: the same descriptor ensemble (key {key}) was trained before; taken from the cache")
    return EnsembleTeacher(model, featurizer, key)  # type: ignore[arg-type]
