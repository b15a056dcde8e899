"""Students that score SMILES: LightGBM or a small torch MLP on Morgan count fingerprints.

Both featurise SMILES themselves (the featuriser is part of the model: a scoring job hands
them SMILES, never feature columns), learn every task type's targets from the core (values
for regression, Hinton-softened probabilities for classification, blended with labels where
present) and are logged as an MLflow "model from code" pyfunc whose artifacts are native
files (:mod:`stillroom_molecules.scorer`). The same class trained on labels alone is the
same-size no-teacher baseline.

* :class:`LightGBMStudent`: one booster per output. A regression output fits the blended
  values (squared error, rows weighted by what they carry); a binary or multilabel one fits the
  core's distillation loss through its gradient as a custom objective, starting from the best
  constant logit; a mixed task does each output as its kind says. Multiclass is the MLP's job.
* :class:`MLPStudent`: one network, one output per endpoint (the multi-task student).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import sparse

from stillroom.contract import (
    INPUT_ALIASES,
    ConfigError,
    ModelDescription,
    NativeModel,
    SoftTargets,
    as_task_output,
    console,
    pinned_requirements,
    training_threads,
)

from .chem import RDKIT_VERSION
from .conformal import ConformalSettings, calibrate, calibration_rows
from .domain import TrainingDomain
from .featurize import FeaturizerConfig
from .loaders import SMILES, SMILES_CANDIDATES
from .outputs import Matrix, as_matrix, blended, calibration_reference, subset_matrix
from .score_columns import ANNOTATIONS, VALID_COLUMN, output_schema
from .scorer import Scorer

Rows = sparse.csr_matrix  # feature rows of a featuriser: one CSR row per molecule
PUBLIC_EXAMPLE = ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1O", "CN1CCC[C@H]1c1cccnc1", "not a smiles"]
LGBM_DEFAULTS: dict[str, Any] = {
    # a cap, not a target: early stopping on validation ends training (the old 400 was reached,
    # 398 of 400 trees, on regression transfer sets of a few thousand molecules)
    "n_estimators": 3000,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 10,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_delta_step": 0.0,
    "early_stopping_rounds": 50,
    # 0: the usable cores. Training 300 rounds on 10,000 molecules took 2.3 s on 2 threads against 4.1 s
    # on 1 on an idle 2-core machine (bench/results/molecules-threads.md); on a busy box OpenMP's
    # spin-waits made 2 threads 30x slower than 1 once: set 1 on a machine shared with other jobs
    "num_threads": 0,
}


def task_type_of(targets: Any) -> str:
    """The task type a targets object stands for (every core targets class says it)."""
    kind = getattr(targets, "task_type", None)
    if kind is None:
        raise TypeError(f"unknown targets type {type(targets).__name__}")
    return str(kind)


def split_params(params: dict[str, Any], defaults: dict[str, Any]) -> tuple[dict[str, Any], FeaturizerConfig, ConformalSettings]:
    """(the model's settings over its defaults, the featuriser's, the conformal calibration's)."""
    params = dict(params)
    featurizer = FeaturizerConfig.from_params(params.pop("featurizer", None))
    conformal = ConformalSettings.from_params(params.pop("conformal", None))
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(
            f"unknown config field 'student.params.{unknown[0]}' (known: featurizer, conformal, {', '.join(sorted(defaults))})"
        )
    return defaults | params, featurizer, conformal


class SmilesStudent:
    """Common part: featurise (cached while training), fit per task type, log as a pyfunc."""

    kind = "abstract"

    def __init__(self, params: dict[str, Any], seed: int, defaults: dict[str, Any]) -> None:
        self.params, self.featurizer, self.conformal = split_params(params, defaults)
        self.seed = seed
        self.scorer: Scorer | None = None
        self.loss = "not fitted"
        self.training: dict[str, Any] = {}
        self.names: list[str] = []
        self.smiles_column: str | None = None  # the training file's SMILES column, looked for first when scoring

    def name_outputs(self, names: list[str]) -> None:
        """Output column names for the logged model (the data's target columns or endpoints)."""
        self.names = [str(n) for n in names]

    def fit(self, X: pd.DataFrame, targets: Any, X_valid: pd.DataFrame | None = None, targets_valid: Any = None) -> SmilesStudent:
        task_type = task_type_of(targets)
        m = as_matrix(targets, task_type)
        m_valid = as_matrix(targets_valid, task_type, m.n_outputs) if targets_valid is not None else None
        types = list(m.kinds) if task_type == "mixed" else None
        self.scorer = Scorer(self.kind, task_type, output_columns(self.names, m.n_outputs), self.featurizer, output_types=types)
        F = self.scorer.features(X[SMILES].tolist(), use_cache=True)
        F_valid = self.scorer.features(X_valid[SMILES].tolist(), use_cache=True) if X_valid is not None else None
        calibration = calibration_rows(F_valid.shape[0] if F_valid is not None else 0, self.conformal, self.seed)
        if F_valid is not None and m_valid is not None and calibration.any():
            # held out from early stopping and the student choice: what the intervals are calibrated on
            F_stop, m_stop = F_valid[~calibration], subset_matrix(m_valid, ~calibration)
            self._fit(F, m, F_stop, m_stop)
            self._calibrate(F_valid[calibration], subset_matrix(m_valid, calibration))
        else:
            self._fit(F, m, F_valid, m_valid)
        # after _fit: molecules.auto replaces its scorer with the chosen candidate's there
        self._fitted().domain = TrainingDomain.of_smiles(X[SMILES].tolist())  # what it learnt from: labelled rows and pool
        self.loss = (
            f"distillation ({_loss_text(m)}, T={m.temperature:g}, alpha={m.alpha:g})"
            if m.teacher is not None
            else "labels only (no teacher)"
        )
        return self

    def ship_run_settings(self, ad_threshold: float, smiles_column: str | None) -> None:
        """What the run's config decides and the shipped model must know: the similarity that
        counts as inside the domain, and the SMILES column the user's files use."""
        scorer = self._fitted()
        if scorer.domain is not None:
            scorer.domain = scorer.domain.with_threshold(ad_threshold)
        self.smiles_column = smiles_column

    def _fit(self, F: Rows, m: Matrix, F_valid: Rows | None, m_valid: Matrix | None) -> None:
        raise NotImplementedError

    def _calibrate(self, F_cal: Rows, m_cal: Matrix) -> None:
        """Split-conformal quantiles from the calibration molecules, saved with the model.

        The reference is the labels; for molecules without labels (``data.reference: teacher``)
        the teacher's values and calls, which the student is then judged against as well."""
        scorer = self._fitted()
        p = scorer.predict_features(F_cal)
        y = calibration_reference(m_cal)
        scorer.conformal = calibrate(scorer.kinds, y, p, self.conformal.level)
        short = [n for n, ok in zip(scorer.outputs, scorer.conformal["guaranteed"], strict=False) if not ok]
        if short:
            console.log(
                f"conformal: too few calibration molecules for level {self.conformal.level} on {', '.join(short)}: "
                "their intervals do not carry the guarantee (raise data.valid_fraction or conformal.calibration_fraction)"
            )
        self.training = self.training | {
            "conformal_level": self.conformal.level,
            "conformal_calibration_molecules": int(F_cal.shape[0]),
        }

    def _fitted(self) -> Scorer:
        if self.scorer is None:
            raise RuntimeError("student is not fitted")
        return self.scorer

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """From SMILES to outputs, the whole way (standardise, featurise, model): what is timed."""
        scorer = self._fitted()
        out, _valid = scorer.predict_smiles(X[SMILES].tolist())
        return as_task_output(out, scorer.task_type)

    def describe(self) -> ModelDescription:
        scorer = self._fitted()
        with tempfile.TemporaryDirectory() as tmp:
            size = sum(p.stat().st_size for p in scorer.save(Path(tmp)).iterdir())
        return ModelDescription(
            name=f"molecules-{self.kind}-student",
            kind=f"{self.kind} on {self.featurizer_text()}, {self.loss}",
            n_parameters=scorer.n_parameters(),
            size_bytes=int(size),
            details={"featurizer": self.featurizer_text(), "rdkit_version": RDKIT_VERSION, **self.training},
        )

    def featurizer_text(self) -> str:
        from .featurize import Featurizer

        return Featurizer(self.featurizer).describe()["featurizer"]

    def native_model(self) -> NativeModel:
        """A models-from-code pyfunc: the code file plus the native files as artifacts."""
        scorer = self._fitted()
        directory = scorer.save(Path(tempfile.mkdtemp(prefix="stillroom-molecules-student-")))
        example = pd.DataFrame({SMILES: PUBLIC_EXAMPLE})
        return NativeModel(
            "pyfunc",
            str(Path(__file__).with_name("pyfunc_student.py")),
            signature=smiles_signature(scorer),
            input_example=example,
            log_kwargs={
                "artifacts": {"student": str(directory)},
                "pip_requirements": requirements(),
                "model_config": {INPUT_ALIASES: {SMILES: smiles_aliases(self.smiles_column)}},
            },
            scratch=(str(directory),),
        )


def smiles_aliases(configured: str | None) -> list[str]:
    """The columns a scoring input's SMILES may come in (any case), the training file's first:
    the same search as :func:`~.loaders.find_smiles_column` makes when a run reads its file."""
    return list(dict.fromkeys(([configured] if configured else []) + list(SMILES_CANDIDATES)))


def _loss_text(m: Matrix) -> str:
    """What the outputs learn from, by kind: blended values, Hinton soft targets, or both."""
    kinds = set(m.kinds)
    parts = (["blended values"] if "regression" in kinds else []) + (["Hinton soft targets"] if kinds - {"regression"} else [])
    return " and ".join(parts)


def output_columns(names: list[str], n_outputs: int) -> list[str]:
    """The data's names when they fit (one per output, distinct, not the flag), else positions."""
    if n_outputs == 1:
        return ["score"]
    reserved = {VALID_COLUMN, *ANNOTATIONS}
    usable = len(names) == n_outputs and len(set(names)) == n_outputs and not reserved & set(names) and all(names)
    return list(names) if usable else [f"score_{j}" for j in range(n_outputs)]


def smiles_signature(scorer: Scorer) -> Any:
    """Input: one string column ``smiles``; output: :func:`~.score_columns.output_schema`."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    outputs = [ColSpec(kind, name) for name, kind in output_schema(scorer.output_columns(), scorer.domain is not None)]
    outputs += [ColSpec(kind, name) for name, kind in scorer.uncertainty_columns()]  # annotations, after the flag
    return ModelSignature(inputs=Schema([ColSpec("string", SMILES)]), outputs=Schema(outputs))


def requirements() -> list[str]:
    """Pinned requirements of the logged model (what scoring needs: no teacher, no admet-ai)."""
    return pinned_requirements(("stillroom-molecules", "rdkit", "lightgbm", "torch", "numpy", "pandas", "scipy"))


class LightGBMStudent(SmilesStudent):
    """One LightGBM booster per output on fingerprints."""

    kind = "lightgbm"

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        super().__init__(params, seed, LGBM_DEFAULTS)

    def _lgb_params(self) -> dict[str, Any]:
        skip = ("n_estimators", "early_stopping_rounds")
        return {k: v for k, v in self.params.items() if k not in skip} | {
            "num_threads": training_threads(int(self.params["num_threads"])),  # 0: the usable cores (a search trial: its share)
            "seed": self.seed,
            "verbosity": -1,
            "deterministic": True,
        }

    def _fit(self, F: Rows, m: Matrix, F_valid: Rows | None, m_valid: Matrix | None) -> None:
        scorer = self._fitted()
        if scorer.task_type == "multiclass":
            raise ConfigError(
                "the LightGBM molecules student handles regression, binary and multilabel; use molecules.mlp for multiclass"
            )
        trees = []
        for j, kind in enumerate(m.kinds):
            fit = self._fit_regression if kind == "regression" else self._fit_classification
            booster, init = fit(F, m, F_valid, m_valid, j)
            scorer.boosters.append(booster)
            scorer.init.append(init)
            trees.append(booster.num_trees())
        self.training = {"trees_per_output": trees}

    def _train(self, params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset | None, feval: Any = None) -> lgb.Booster:
        callbacks = []
        if valid is not None and self.params["early_stopping_rounds"]:
            callbacks.append(lgb.early_stopping(int(self.params["early_stopping_rounds"]), verbose=False))
        booster = lgb.train(
            params,
            train,
            num_boost_round=int(self.params["n_estimators"]),
            valid_sets=[valid] if valid is not None else [],
            feval=feval,
            callbacks=callbacks,
        )
        # only the trees up to the best iteration are shipped: what is measured is what is shipped
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration or None))

    def _fit_regression(
        self, F: Rows, m: Matrix, F_valid: Rows | None, m_valid: Matrix | None, j: int
    ) -> tuple[lgb.Booster, float]:
        value, weight = blended(m)
        rows = weight[:, j] > 0
        train = lgb.Dataset(F[rows], label=value[rows, j], weight=weight[rows, j], free_raw_data=True)
        valid = None
        if F_valid is not None and m_valid is not None:
            v_value, v_weight = blended(m_valid)
            v_rows = v_weight[:, j] > 0
            if v_rows.any():
                valid = lgb.Dataset(F_valid[v_rows], label=v_value[v_rows, j], weight=v_weight[v_rows, j], reference=train)
        params = self._lgb_params() | {"objective": "regression", "metric": "l2"}
        return self._train(params, train, valid), 0.0

    def _fit_classification(
        self, F: Rows, m: Matrix, F_valid: Rows | None, m_valid: Matrix | None, j: int
    ) -> tuple[lgb.Booster, float]:
        targets = _column_targets(m, j)
        rows = np.isfinite(targets.hard) | (targets.teacher is not None)
        targets = _subset(targets, rows)
        init = targets.initial_logit()
        train = lgb.Dataset(F[rows], label=targets.blended(), init_score=np.full(int(rows.sum()), init), free_raw_data=True)
        valid, feval = None, None
        if F_valid is not None and m_valid is not None:
            vt = _column_targets(m_valid, j)
            v_rows = np.isfinite(vt.hard) | (vt.teacher is not None)
            vt = _subset(vt, v_rows)
            if v_rows.any():
                valid = lgb.Dataset(
                    F_valid[v_rows], label=vt.blended(), init_score=np.full(int(v_rows.sum()), init), reference=train
                )
                feval = lambda z, _data: ("distillation_loss", vt.loss(z), False)  # noqa: E731
        params = self._lgb_params() | {"objective": lambda z, _d: targets.gradient(z), "metric": "None"}
        return self._train(params, train, valid, feval), init


def _column_targets(m: Matrix, j: int) -> SoftTargets:
    teacher = None if m.teacher is None else m.teacher[:, j]
    return SoftTargets(m.hard[:, j], teacher, m.temperature, m.alpha) if teacher is not None else _LabelsOnly(m.hard[:, j])


class _LabelsOnly(SoftTargets):
    """Baseline targets of one output that tolerate NaN (missing) labels until :func:`_subset`
    drops those rows (a multilabel file rarely has every label for every molecule)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hard", np.asarray(self.hard, dtype=float))


def _subset(t: SoftTargets, rows: np.ndarray) -> SoftTargets:
    teacher = None if t.teacher is None else t.teacher[rows]
    if teacher is None:
        return SoftTargets(t.hard[rows])
    return SoftTargets(t.hard[rows], teacher, t.temperature, t.alpha)


class MLPStudent(SmilesStudent):
    """A small multi-task MLP on fingerprints."""

    kind = "mlp"

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        from .mlp import DEFAULTS, epoch_budget

        super().__init__(params, seed, DEFAULTS)
        epoch_budget(self.params, 0)  # a bad max_row_epochs fails before the teacher trains

    def _fit(self, F: Rows, m: Matrix, F_valid: Rows | None, m_valid: Matrix | None) -> None:
        from .mlp import train_network

        scorer = self._fitted()
        net, config = train_network(F, m, scorer.task_type, self.params, self.seed, F_valid, m_valid)
        scorer.network = net
        scorer.network_config = {k: config[k] for k in ("n_in", "n_out", "hidden", "dropout")}
        scorer.init = [0.0] * m.n_outputs
        self.training = {"epochs_run": config["epochs_run"], "epoch_cap": config["epoch_cap"]}
