"""Hook implementations of the medical imaging vertical: registration, and teachers from files
and MLflow URIs for the ``medical`` task. The work lives beside it.

torch is imported only when a medical model is built: every ``stillroom`` command loads every
installed vertical's hooks, and a fraud team's ``stillroom score`` must not pay torch's 1.5 s
import (or need it to work) because the medical vertical is installed beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillroom.contract import (
    ROLES,
    ComplianceProfile,
    DataBundle,
    DatasetSpec,
    EvaluatorSpec,
    InputFormat,
    StudentSpec,
    TaskSpec,
    TeacherLoader,
    TeacherSpec,
    hookimpl,
)

from . import datasets, formats
from .config import MedicalConfig
from .evaluation import evaluate_medical

if TYPE_CHECKING:
    from .student import CNNStudent
    from .teacher import TorchTeacher

TASK = "medical"
CARD = {
    "intended_use": (
        "Screening support on a CPU beside the scanner or on a clinician's laptop: the student flags "
        "images for priority reading. It is not a diagnosis and does not replace the reading clinician."
    ),
    "factors": (
        "Performance is reported per acquisition site, sex and age group when the data carries them "
        "(tables/subgroups.csv); the worst subgroup's sensitivity is a logged metric."
    ),
    "metrics": (
        "AUROC with bootstrap CI; sensitivity, specificity, PPV and NPV (with CIs) at an operating point "
        "chosen on the validation split and then fixed (medical.operating_point; the thresholds and the rates "
        "at them are listed under the operating points); accuracy there and of the most probable class "
        "(argmax_accuracy, as published results quote it); per-class metrics; calibration (ECE, "
        "reliability diagram); CPU latency per image p50/p99, parameters and bytes of every model."
    ),
    "ethical_considerations": (
        "A missed lesion harms a patient: the operating point favours sensitivity by default. Check the "
        "subgroup table for sites or groups where sensitivity drops before promotion. Input examples "
        "logged with the model are synthetic noise tensors, never patient images."
    ),
    "caveats": ("Validated only on the data of this run; a new scanner or site needs its own validation."),
}


@hookimpl
def stillroom_tasks() -> Iterable[TaskSpec]:
    yield TaskSpec(
        name=TASK,
        description="CNN teacher distilled into a CPU-sized CNN student for medical image screening",
        config_model=MedicalConfig,
        default_config=Path(__file__).with_name("default.yaml"),
        compliance_profile="medical",
        task_type="binary",
        card=CARD,
    )


@hookimpl
def stillroom_datasets() -> Iterable[DatasetSpec]:
    yield DatasetSpec(
        "medical.synthetic", TASK, datasets.load_synthetic, "seeded synthetic tissue images with lesions + metadata"
    )
    yield DatasetSpec("medical.npz", TASK, datasets.load_npz_file, "MedMNIST layout: {train,val,test}_images/_labels")
    yield DatasetSpec("medical.folder", TASK, datasets.load_image_folder, "PNG/JPEG/DICOM folder with a labels CSV")


@hookimpl
def stillroom_input_formats() -> Iterable[InputFormat]:
    yield formats.NPZ
    yield formats.IMAGES


def _resnet_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> TorchTeacher:
    from .teacher import train_resnet_teacher

    return train_resnet_teacher(params, bundle, seed)


def _state_dict_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> TorchTeacher:
    from .teacher import load_state_dict_teacher

    return load_state_dict_teacher(params, bundle, seed)


def _cnn_student(params: dict[str, Any], seed: int) -> CNNStudent:
    from .student import CNNStudent

    return CNNStudent(params, seed)


@hookimpl
def stillroom_teachers() -> Iterable[TeacherSpec]:
    yield TeacherSpec("medical.resnet", TASK, _resnet_teacher, "ResNet-style CNN trained on CPU (cached)")
    yield TeacherSpec("medical.state_dict", TASK, _state_dict_teacher, "state dict file + named architecture")


@hookimpl
def stillroom_students() -> Iterable[StudentSpec]:
    yield StudentSpec("medical.cnn", TASK, _cnn_student, "compact depthwise-separable CNN, any mix of distillation families")


@hookimpl
def stillroom_evaluators() -> Iterable[EvaluatorSpec]:
    yield EvaluatorSpec(
        "medical.metrics",
        TASK,
        evaluate_medical,
        "operating point, sens/spec/PPV/NPV, per class, subgroups, calibration",
        reports=reported_metrics,
    )


def reported_metrics(bundle: DataBundle, config: Any) -> dict[str, str | None]:
    """Every role's rates at the operating point and calibration; the worst subgroup's only when
    the images carry subgroup metadata (checked before the teacher trains, for a gate rule on it)."""
    claims: dict[str, str | None] = {f"{role}.*": None for role in ROLES}
    if not bundle.details.get("metadata_columns"):
        claims["*.worst_subgroup_*"] = (
            "subgroup metrics need metadata per image (site, sex, age group ...): give data.metadata_csv for an .npz "
            "archive, or a folder's CSV with such columns (data.metadata), or drop the rule"
        )
    return claims


@hookimpl
def stillroom_make_teacher(
    spec: Any, task: TaskSpec, bundle: DataBundle, seed: int, load_model: TeacherLoader
) -> TorchTeacher | None:
    """A ``teacher.uri`` for the medical task: a TorchScript file or an MLflow pytorch model."""
    if task.name != TASK or not spec.uri:
        return None
    from .teacher import load_torchscript_teacher, mlflow_teacher

    if spec.uri.startswith(("models:/", "runs:/")):
        return mlflow_teacher(spec.uri, dict(spec.params), bundle, load_model)
    return load_torchscript_teacher(spec.uri, dict(spec.params), bundle)


@hookimpl
def stillroom_compliance_profiles() -> Iterable[ComplianceProfile]:
    per_model = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "operating_threshold", "calibration_ece")
    yield ComplianceProfile(
        name="medical",
        metrics=tuple(f"{r}.{m}" for r in ROLES for m in per_model)
        + tuple(f"{r}.roc_auc.ci_low" for r in ROLES)
        + ("student.sensitivity.ci_low", "student.specificity.ci_low"),
        params=(
            "data.dataset",
            "medical.operating_point.kind",
            "medical.operating_point.value",
            "student.params.families.response",
        ),
        # subgroup tables and metrics are added when the data carries metadata (not every source does)
        artifacts=("tables/per_class.csv", "tables/calibration.csv", "plots/medical_reliability.png"),
        description="Medical imaging: AUROC with CI, sens/spec/PPV/NPV at a fixed operating point, subgroups, calibration.",
    )


SEARCH_SPACE: dict[str, Any] = {
    # width and depth of the separable student (the wider one met its target in bench/results/medical.md)
    "student.params.widths": {"choices": [[8, 16, 32], [12, 24, 48], [16, 32, 64], [24, 48, 96]]},
    "student.params.blocks": {"choices": [[1, 1, 1], [1, 2, 2]]},
    # loss families and their weights (response always; one feature- or relation-based family on top)
    "student.params.families": {
        "choices": [
            {"response": 1.0},
            {"response": 1.0, "hints": 0.5},
            {"response": 1.0, "relation": 1.0},
            {"response": 1.0, "attention": 1.0},
            {"response": 1.0, "dkd": 1.0},
        ]
    },
    "student.params.born_again.generations": {"low": 0, "high": 2, "integer": True},
    "recipe.temperature": {"low": 1.0, "high": 6.0},
    "recipe.alpha": {"low": 0.3, "high": 1.0},
}


@hookimpl
def stillroom_search_space(task: TaskSpec) -> dict[str, Any] | None:
    """Width, depth, loss families and weights, born-again generations, temperature and alpha."""
    return SEARCH_SPACE if task.name == TASK else None
