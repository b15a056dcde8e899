"""The in-plugin heavy teacher: an ensemble over rich molecular descriptors.

All ~217 RDKit 2D descriptors plus 2048 Morgan counts feed a LightGBM booster per output (300
trees by default) and an ExtraTrees forest of 100 trees, averaged. It is the light teacher
(the default without chemprop, see :mod:`.chemprop_teacher`): the descriptors cost ~10 ms per
molecule, and it trains in minutes on CPU where a graph network takes much longer.

Sized to scale: the forest draws 10% of the features per split and is fitted once for all
outputs of a kind when their labels are complete (scikit-learn's trees are natively
multi-output), on every usable core. The earlier default, 2 x 500 boosted trees plus a
300-tree forest *per output*, cost about 377 CPU-seconds per output on 5,500 molecules
(issue 24); ``teacher.params`` still reaches it (``boosters: 2, n_estimators: 500,
forest_trees: 300, forest_max_features: 0.3, learning_rate: 0.03``).

Every task type is supported: regression (rows missing a label are skipped for that output),
multilabel and mixed (each output as its kind says), class probabilities for binary and
multiclass. A trained teacher is cached under :func:`~stillroom.contract.teacher_cache_key`
(parameters, seed, features, label columns, task type, training data),
and logged to MLflow as a pyfunc scoring SMILES (LightGBM text, skops forests: no pickle).
"""

from __future__ import annotations

import importlib.metadata as md
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from stillroom.contract import (
    ConfigError,
    DataBundle,
    ModelDescription,
    ModelLoadError,
    NativeModel,
    as_task_output,
    cached_model,
    console,
    default_cache_dir,
    inference_threads,
    output_kinds,
    teacher_cache_key,
    usable_cores,
)

from .featurize import Featurizer, FeaturizerConfig
from .labels import training_labels
from .loaders import SMILES

DEFAULTS: dict[str, Any] = {
    "boosters": 1,
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "forest_trees": 100,
    "forest_max_features": 0.1,
    "descriptors": "all",
    "n_bits": 2048,
    "n_jobs": 0,  # 0: the usable cores
    "cache": True,
}
FORMAT = 2  # members kept as LightGBM Boosters and forests by output groups (cache keys before it differ)
SPEC_FILE = "descriptor_ensemble.json"


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config field 'teacher.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
    p = DEFAULTS | params
    if int(p["boosters"]) < 0 or int(p["forest_trees"]) < 0 or int(p["boosters"]) + int(p["forest_trees"]) == 0:
        raise ConfigError("teacher.params: boosters and forest_trees must be >= 0 and not both 0")
    if not 0 < float(p["forest_max_features"]) <= 1:
        raise ConfigError("teacher.params.forest_max_features: a fraction of the features in (0, 1]")
    return p


def _jobs(p: dict[str, Any]) -> int:
    return int(p["n_jobs"]) or usable_cores()


class DescriptorEnsemble:
    """LightGBM boosters per output and ExtraTrees forests, averaged per output.

    A forest is fitted once for every output of one kind when each training molecule has all of
    their labels (scikit-learn's trees are natively multi-output: one forest for a 12-task set
    instead of 12), and once per output otherwise (rows missing that label are skipped, as for
    the boosters). Fitted boosters are kept as LightGBM ``Booster`` objects: what is saved (in
    LightGBM's text format) is what predicts."""

    def __init__(self, p: dict[str, Any], task_type: str, seed: int, output_types: list[str] | None = None) -> None:
        self.p, self.task_type, self.seed = p, task_type, seed
        self.output_types = output_types  # a mixed task's kind per output
        self.boosters: list[list[Any]] = []  # per output: lgb.Booster
        self.forests: list[tuple[Any, list[int]]] = []  # (forest, the outputs it predicts, in its column order)
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

    def _forest(self, classify: bool, salt: int) -> Any:
        cls = ExtraTreesClassifier if classify else ExtraTreesRegressor
        return cls(
            n_estimators=self.p["forest_trees"],
            max_features=float(self.p["forest_max_features"]),
            min_samples_leaf=1,
            n_jobs=_jobs(self.p),
            random_state=self.seed + 17 * salt + 99,
        )

    def fit(self, X: np.ndarray, Y: np.ndarray) -> DescriptorEnsemble:
        """``Y``: (n, k) float with NaN = missing (multiclass: (n, 1) class index)."""
        if self.task_type == "multiclass":
            self.n_classes = int(np.nanmax(Y)) + 1
        kinds = self._kinds(Y.shape[1])
        for j, kind in enumerate(kinds):
            classify = kind != "regression"
            rows = ~np.isnan(Y[:, j])
            y = Y[rows, j].astype(int) if classify else Y[rows, j]
            self.boosters.append([m.fit(X[rows], y).booster_ for m in self._boosters(classify, j)])
        if self.p["forest_trees"]:
            for kind in dict.fromkeys(kinds):
                self._fit_forests(X, Y, [j for j, k in enumerate(kinds) if k == kind], kind != "regression")
        return self

    def _fit_forests(self, X: np.ndarray, Y: np.ndarray, columns: list[int], classify: bool) -> None:
        """One multi-output forest for ``columns`` when no label among them is missing, else one per output."""
        block = Y[:, columns]
        if len(columns) > 1 and not np.isnan(block).any():
            target = block.astype(int) if classify else block
            self.forests.append((self._forest(classify, columns[0]).fit(X, target), columns))
            return
        for j in columns:
            rows = ~np.isnan(Y[:, j])
            y = Y[rows, j].astype(int) if classify else Y[rows, j]
            self.forests.append((self._forest(classify, j).fit(X[rows], y), [j]))

    def _kinds(self, n_outputs: int) -> tuple[str, ...]:
        return output_kinds(self.task_type, n_outputs, self.output_types)

    def predict(self, X: np.ndarray) -> np.ndarray:
        kinds = self._kinds(len(self.boosters))
        if kinds == ("multiclass",):
            parts = [b.predict(X) for b in self.boosters[0]] + [f.predict_proba(X) for f, _ in self.forests]
            return np.mean(parts, axis=0)
        sums = np.zeros((X.shape[0], len(kinds)))
        counts = np.zeros(len(kinds))
        for j, boosters in enumerate(self.boosters):
            for b in boosters:  # a binary Booster predicts P(1); a regression one the value
                sums[:, j] += b.predict(X)
                counts[j] += 1
        for forest, columns in self.forests:
            forest.n_jobs = inference_threads(_jobs(self.p))  # the run's budget while it times models
            values = _forest_outputs(forest, X, kinds[columns[0]] != "regression")
            sums[:, columns] += values
            counts[columns] += 1
        return sums / counts

    def n_parameters(self) -> int:
        nodes = sum(int(b.trees_to_dataframe().shape[0]) for boosters in self.boosters for b in boosters)
        return nodes + sum(int(sum(t.tree_.node_count for t in f.estimators_)) for f, _ in self.forests)

    def save(self, directory: Path, outputs: list[str], featurizer: FeaturizerConfig) -> Path:
        """Boosters in LightGBM's text format, forests with skops (no pickle), a JSON spec."""
        import skops.io as sio

        directory.mkdir(parents=True, exist_ok=True)
        for j, boosters in enumerate(self.boosters):
            for b, booster in enumerate(boosters):
                booster.save_model(str(directory / f"booster_{j}_{b}.txt"))
        for i, (forest, _) in enumerate(self.forests):
            sio.dump(forest, directory / f"forest_{i}.skops")
        spec = {
            "kind": "descriptor_ensemble",
            "task_type": self.task_type,
            "output_types": self.output_types,
            "outputs": outputs,
            "boosters": [len(b) for b in self.boosters],
            "forests": [columns for _, columns in self.forests],
            "featurizer": asdict(featurizer),
            "params": self.p,
            "seed": self.seed,
        }
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> tuple[DescriptorEnsemble, list[str], FeaturizerConfig]:
        import skops.io as sio

        spec = json.loads((directory / SPEC_FILE).read_text())
        model = cls(spec["params"], spec["task_type"], spec["seed"], spec["output_types"])
        model.boosters = [
            [lgb.Booster(model_file=str(directory / f"booster_{j}_{b}.txt")) for b in range(n)]
            for j, n in enumerate(spec["boosters"])
        ]
        for i, columns in enumerate(spec["forests"]):
            path = directory / f"forest_{i}.skops"
            model.forests.append((sio.load(path, trusted=_forest_types(path)), list(columns)))
        settings = dict(spec["featurizer"])
        if isinstance(settings.get("descriptors"), list):
            settings["descriptors"] = tuple(settings["descriptors"])
        return model, list(spec["outputs"]), FeaturizerConfig(**settings)


def _forest_types(path: Path) -> list[str]:
    """The types a saved forest may hold: scikit-learn's trees and numpy's, nothing else."""
    import skops.io as sio

    found = sio.get_untrusted_types(file=path)
    foreign = [t for t in found if not t.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise ModelLoadError(f"{path.name} holds types other than scikit-learn's ({foreign[:3]}); refused")
    return found


def _forest_outputs(forest: Any, X: np.ndarray, classify: bool) -> np.ndarray:
    """(n, k) forest outputs for its columns: values, or P(1) per output for classifiers."""
    if not classify:
        return forest.predict(X).reshape(X.shape[0], -1)
    proba = forest.predict_proba(X)
    if not isinstance(proba, list):  # a single output
        proba = [proba]
    classes = forest.classes_ if isinstance(forest.classes_, list) else [forest.classes_]
    return np.column_stack([p[:, list(c).index(1)] for p, c in zip(proba, classes, strict=True)])


class EnsembleTeacher:
    """The fitted ensemble behind the Teacher protocol: SMILES frame in, task-shaped outputs out."""

    def __init__(self, model: DescriptorEnsemble, featurizer: Featurizer, identity: str, outputs: list[str]) -> None:
        self.model, self.featurizer, self.identity, self.outputs = model, featurizer, identity, list(outputs)
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
            import tempfile

            with tempfile.TemporaryDirectory(prefix="stillroom-descriptor-size-") as tmp:
                saved = self.model.save(Path(tmp), self.outputs, self.featurizer.config)
                self._size = sum(f.stat().st_size for f in saved.iterdir())
        p = self.model.p
        return ModelDescription(
            name="molecules-descriptor-ensemble",
            kind=(
                f"{p['boosters']} LightGBM x {p['n_estimators']} trees per output + ExtraTrees x {p['forest_trees']} "
                f"({len(self.model.forests)} forest(s)) on RDKit descriptors"
            ),
            n_parameters=self.model.n_parameters(),
            size_bytes=self._size,
            details={"identity": self.identity, **self.featurizer.describe()},
        )

    def native_model(self) -> NativeModel:
        """A models-from-code pyfunc scoring SMILES: :mod:`.pyfunc_teacher` plus LightGBM text
        boosters, skops forests and the featuriser's settings (no pickled Python object)."""
        import tempfile

        from .chemprop_teacher import smiles_model

        directory = Path(tempfile.mkdtemp(prefix="stillroom-descriptor-teacher-"))
        self.model.save(directory, self.outputs, self.featurizer.config)
        return smiles_model(directory, columns_of(self.model, self.outputs), ("lightgbm", "scikit-learn", "skops", "scipy"))


def train_descriptor_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> EnsembleTeacher:
    """Fit (or take from the cache) the ensemble on the labelled training split."""
    p = check_params(params)
    if bundle.reference == "teacher":
        raise ConfigError(
            "teacher molecules.descriptor_ensemble trains on labels, and data.reference 'teacher' means there are none: "
            "use a pre-trained teacher (teacher.name=molecules.admet, or teacher.uri=<an MLflow model taking SMILES>)"
        )
    featurizer = Featurizer(FeaturizerConfig(n_bits=int(p["n_bits"]), descriptors=p["descriptors"], n_jobs=_jobs(p)))
    task_type = bundle.details.get("task_type", "regression")
    output_types = bundle.details.get("output_types")
    train = bundle.train
    versions = {d: md.version(d) for d in ("stillroom-molecules", "scikit-learn", "lightgbm", "rdkit")}
    # the core's key (features, labels, task type, data) plus what the ensemble itself reads
    reads = (task_type, output_types, bundle.details.get("targets"))
    key = teacher_cache_key("molecules.descriptor_ensemble", p, seed, bundle, versions=versions, format=FORMAT, reads=reads)

    Y = training_labels(bundle, train, "molecules.descriptor_ensemble", "training split")

    def fit() -> DescriptorEnsemble:
        X = featurizer.transform(train[SMILES].tolist()).toarray()  # dense: the ensemble was tuned on it
        return DescriptorEnsemble(p, task_type, seed, output_types).fit(X, Y)

    model, hit = cached_model(default_cache_dir() / "teachers", key, fit) if p["cache"] else (fit(), False)
    if hit:
        console.log(f"teacher: the same descriptor ensemble (key {key}) was trained before; taken from the cache")
    return EnsembleTeacher(model, featurizer, key, list(bundle.details["targets"]))  # type: ignore[arg-type]


class SavedEnsemble:
    """A descriptor ensemble read back from its saved files: what the logged pyfunc runs."""

    def __init__(self, model: DescriptorEnsemble, outputs: list[str], featurizer: FeaturizerConfig) -> None:
        self.model, self.outputs, self.featurizer = model, outputs, Featurizer(featurizer)

    @classmethod
    def load(cls, directory: str | Path) -> SavedEnsemble:
        try:
            return cls(*DescriptorEnsemble.load(Path(directory)))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{directory} is not a saved descriptor ensemble: {type(exc).__name__}: {exc}") from None

    def frame(self, smiles: list[object]) -> pd.DataFrame:
        """One column per output (``score`` for one) and ``smiles_valid``; NaN for invalid SMILES."""
        from rdkit import Chem

        from .chem import standardised_mol
        from .chemprop_teacher import VALID_COLUMN

        columns = columns_of(self.model, self.outputs)
        mols = [standardised_mol(s)[0] for s in smiles]
        valid = np.array([m is not None for m in mols], dtype=bool)
        values = np.full((len(smiles), len(columns)), np.nan)
        if valid.any():
            canonical = [Chem.MolToSmiles(m) for m in mols if m is not None]
            features = self.featurizer.transform(canonical, use_cache=False).toarray()
            values[valid] = self.model.predict(features).reshape(int(valid.sum()), len(columns))
        return pd.DataFrame(values, columns=columns).assign(**{VALID_COLUMN: valid})


def columns_of(model: DescriptorEnsemble, outputs: list[str]) -> list[str]:
    """The logged model's output columns: ``score``, the target names, or one per class."""
    from .chemprop_teacher import output_columns

    if model.task_type == "multiclass":
        return [f"class_{c}" for c in range(model.n_classes)]
    return output_columns(outputs)
