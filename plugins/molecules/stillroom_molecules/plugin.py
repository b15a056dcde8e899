"""Hook implementations of the molecules vertical: registration only, the work lives beside it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stillroom.contract import (
    ROLES,
    ComplianceProfile,
    DatasetSpec,
    EvaluatorSpec,
    InputFormat,
    OutputFormat,
    StudentSpec,
    TaskSpec,
    TeacherSpec,
    hookimpl,
)

from . import datasets, formats, sdf_output
from .config import MoleculesConfig
from .evaluation import evaluate_molecules
from .metrics import SCREENING_FRACTION, enrichment_name

CARD = {
    "intended_use": (
        "Virtual screening and prioritisation of molecules by a predicted property at fingerprint "
        "speed, in place of a slow teacher model. Decision support for medicinal chemists; not a "
        "substitute for measurement, and not to be trusted outside its applicability domain."
    ),
    "factors": "Metrics are reported inside vs outside the applicability domain (max Tanimoto to training molecules).",
    "metrics": (
        "RMSE/MAE/R2/Spearman (regression) or ROC-AUC/PR-AUC/MCC (classification) per endpoint, fidelity "
        "to the teacher, applicability-domain coverage and metrics inside vs outside it, enrichment factor "
        "at the top 1%, molecules/s from SMILES to score; split type (scaffold or random) recorded."
    ),
    "ethical_considerations": (
        "Input examples logged with the model are public textbook molecules; no proprietary structure "
        "leaves the data. Predictions for toxicity endpoints must not replace regulatory studies."
    ),
    "caveats": (
        "A scaffold split estimates performance on new chemical series; a random split flatters. "
        "Invalid SMILES are flagged (smiles_valid = false) and get no score."
    ),
}


@hookimpl
def stillroom_tasks() -> Iterable[TaskSpec]:
    yield TaskSpec(
        name="molecules",
        description=(
            "slow molecule model (Chemprop D-MPNN, descriptor ensemble, ADMET-AI, any MLflow model) "
            "distilled into a fingerprint student"
        ),
        config_model=MoleculesConfig,
        default_config=Path(__file__).with_name("default.yaml"),
        compliance_profile="molecules",
        task_type="regression",
        card=CARD,
    )


@hookimpl
def stillroom_datasets() -> Iterable[DatasetSpec]:
    yield DatasetSpec("molecules.solubility", "molecules", datasets.load_solubility, "embedded RDKit solubility set + NCI pool")
    yield DatasetSpec("molecules.freesolv", "molecules", datasets.load_freesolv, "embedded FreeSolv hydration free energies")
    yield DatasetSpec("molecules.file", "molecules", datasets.load_file, "CSV/TSV/Parquet/SDF/SMILES file with target column(s)")


def _descriptor_teacher(params: dict[str, Any], bundle: Any, seed: int) -> Any:
    from .teacher import train_descriptor_teacher

    return train_descriptor_teacher(params, bundle, seed)


def _chemprop_teacher(params: dict[str, Any], bundle: Any, seed: int) -> Any:
    from .chemprop_teacher import train_chemprop_teacher

    return train_chemprop_teacher(params, bundle, seed)


def _admet_teacher(params: dict[str, Any], bundle: Any, seed: int) -> Any:
    from .admet import build_admet_teacher

    return build_admet_teacher(params, bundle, seed)


@hookimpl
def stillroom_teachers() -> Iterable[TeacherSpec]:
    yield TeacherSpec(
        "molecules.descriptor_ensemble", "molecules", _descriptor_teacher, "LightGBM x3 + ExtraTrees on all RDKit 2D descriptors"
    )
    yield TeacherSpec(
        "molecules.chemprop",
        "molecules",
        _chemprop_teacher,
        "Chemprop 2 D-MPNN ensemble trained here (extra [gnn]; the default with it)",
    )
    yield TeacherSpec("molecules.admet", "molecules", _admet_teacher, "ADMET-AI Chemprop ensemble (extra [admet]), any endpoint")


def _lightgbm(params: dict[str, Any], seed: int) -> Any:
    from .student import LightGBMStudent

    return LightGBMStudent(params, seed)


def _mlp(params: dict[str, Any], seed: int) -> Any:
    from .student import MLPStudent

    return MLPStudent(params, seed)


def _auto(params: dict[str, Any], seed: int) -> Any:
    from .selection import SelectedStudent

    return SelectedStudent(params, seed)


@hookimpl
def stillroom_students() -> Iterable[StudentSpec]:
    yield StudentSpec("molecules.lightgbm", "molecules", _lightgbm, "LightGBM on Morgan count fingerprints, scores SMILES")
    yield StudentSpec("molecules.mlp", "molecules", _mlp, "small multi-task torch MLP on Morgan counts, scores SMILES")
    yield StudentSpec(
        "molecules.auto", "molecules", _auto, "the LightGBM or MLP student with the best validation fidelity within budget"
    )


@hookimpl
def stillroom_evaluators() -> Iterable[EvaluatorSpec]:
    yield EvaluatorSpec(
        "molecules.metrics",
        "molecules",
        evaluate_molecules,
        "applicability domain, enrichment, per-endpoint metrics",
        reports=lambda bundle, config: dict.fromkeys(REPORTED),
    )


REPORTED = (
    *(f"{role}.*" for role in ROLES),
    "ad.*",
    "split.*",
    *(f"{prefix}.{m}*" for prefix in ("fidelity", "baseline_fidelity") for m in ("agreement", "auc_to_teacher_calls")),
)
"""What the molecules evaluator reports beside the core's metrics (domain, enrichment, MCC, the
fidelity of yes/no endpoints to the teacher's calls), as glob patterns."""


@hookimpl
def stillroom_before_run(context: Any) -> None:
    """The molecules compliance params: featuriser, RDKit version, AD method, split, endpoint."""
    if context.task.name != "molecules":
        return
    from .chem import RDKIT_VERSION, STANDARDISATION
    from .featurize import Featurizer, FeaturizerConfig
    from .metrics import AD_METHOD

    cfg = context.config
    featurizer = Featurizer(FeaturizerConfig.from_params(cfg.student.params.get("featurizer")))
    context.params.update(
        {
            "molecules.featurizer": featurizer.describe()["featurizer"],
            "molecules.rdkit_version": RDKIT_VERSION,
            "molecules.standardisation": STANDARDISATION,
            "molecules.ad_method": AD_METHOD,
            "molecules.split": cfg.data.split,
        }
    )
    context.tags["stillroom.molecules.split"] = cfg.data.split


@hookimpl
def stillroom_transfer_points(bundle: Any, config: Any, rng: Any) -> Any:
    """Analogues of the training molecules (``molecules.analogues``), beside the core's pool."""
    if getattr(config, "task", None) != "molecules" or not config.molecules.analogues.enabled:
        return None
    from .analogues import analogue_transfer_points

    return analogue_transfer_points(bundle, config.molecules.analogues, config.run.seed)


@hookimpl
def stillroom_compliance_profiles() -> Iterable[ComplianceProfile]:
    yield ComplianceProfile(
        name="molecules",
        metrics=(
            "ad.coverage",
            "ad.threshold",
            "split.scaffold",
            *(f"{r}.{enrichment_name(SCREENING_FRACTION)}" for r in ROLES),
        ),
        params=(
            "molecules.endpoint",
            "molecules.units",
            "molecules.featurizer",
            "molecules.rdkit_version",
            "molecules.ad_method",
            "molecules.split",
            "run.seed",
            "data.dataset",
        ),
        tags=("stillroom.molecules.split",),
        artifacts=("molecules/applicability_domain.csv", "molecules/data_quality.json", "molecules/ad_method.json"),
        description="Endpoint, units, featuriser, RDKit version, AD coverage and inside/outside metrics, split, enrichment.",
    )


@hookimpl
def stillroom_input_formats() -> Iterable[InputFormat]:
    yield formats.SMI
    yield formats.SDF


@hookimpl
def stillroom_output_formats() -> Iterable[OutputFormat]:
    yield sdf_output.SDF_OUTPUT


LGBM, MLP = {"student.name": "molecules.lightgbm"}, {"student.name": "molecules.mlp"}
ANALOGUES = {"molecules.analogues.enabled": True}
SEARCH_SPACE: dict[str, Any] = {
    # the student's kind, then its size (each kind's own fields); molecules.auto, the default (which
    # chooses among both kinds on validation itself), is a point of the space, so the search's
    # first trial is the default student
    "student.name": {"choices": ["molecules.auto", "molecules.lightgbm", "molecules.mlp"]},
    "student.params.n_estimators": {"low": 100, "high": 600, "integer": True, "log": True, "when": LGBM},
    "student.params.num_leaves": {"low": 15, "high": 63, "integer": True, "log": True, "when": LGBM},
    "student.params.hidden": {"choices": [[256, 64], [512, 128], [1024, 256]], "when": MLP},
    # the featuriser both kinds share
    "student.params.featurizer.radius": {"choices": [2, 3]},
    "student.params.featurizer.n_bits": {"choices": [1024, 2048, 4096]},
    "student.params.featurizer.counts": {"choices": [True, False]},
    # whole-molecule descriptors beside the fingerprint: on Lipophilicity (seed 0) they moved the
    # student of the descriptor-ensemble teacher from 1.11x to 1.03x (fast) / 0.98x (screening) of
    # its RMSE (scaffold split), and did little for the D-MPNN's (1.19x -> 1.18x / 1.17x, random
    # split); screening costs ~10x the parse (Crippen logP, stereo perception), so it is searched
    "student.params.featurizer.descriptors": {"choices": ["none", "fast", "screening"]},
    "recipe.alpha": {"low": 0.3, "high": 1.0},
    # the transfer set: generated analogues of the training molecules, labelled by the teacher
    # (molecules.analogues, this vertical's own section, opened to the search by declaring it here)
    "molecules.analogues.enabled": {"choices": [False, True]},
    "molecules.analogues.max_count": {"low": 250, "high": 4000, "integer": True, "log": True, "when": ANALOGUES},
}


@hookimpl
def stillroom_search_space(task: TaskSpec) -> dict[str, Any] | None:
    """Student kind and size, featuriser, alpha and analogue count for ``stillroom search molecules``."""
    return SEARCH_SPACE if task.name == "molecules" else None
