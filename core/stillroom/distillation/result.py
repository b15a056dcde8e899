"""The record of one distillation: everything the pipeline computed, before it is logged.

The pipeline fills it step by step; the audit trail (:mod:`stillroom.audit`) and the model
card (:mod:`stillroom.audit.modelcard`) are written from it, so what is logged is exactly what was
computed and nothing is computed while logging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract.bundle import DataBundle
from ..contract.config import DistillConfig, StudentConfig
from ..contract.context import EvaluationResult
from ..contract.protocols import ModelDescription, Student
from ..contract.specs import TaskSpec
from .gate import GateResult
from .guards import DataQuality


@dataclass
class TransferSet:
    """Inputs the student learns from, where each row came from, and labels where known."""

    X: pd.DataFrame
    origin: np.ndarray
    hard: np.ndarray  # NaN where no label (pool, synthetic)

    def composition(self) -> dict[str, int]:
        names, counts = np.unique(self.origin, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


@dataclass
class Outputs:
    """Validation and test predictions of every role, plus teacher outputs on the transfer set."""

    transfer_teacher: np.ndarray
    valid: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class TeacherRecord:
    """What remains of the teacher once its outputs are computed (the model itself can go).

    ``model_id`` is its MLflow logged model: the registry model it came from, or the one
    logged in its own run when a plugin trained it; ``None`` for a teacher file that could
    not be logged natively.
    """

    description: ModelDescription
    efficiency: dict[str, float]
    source: str
    model_id: str | None = None


@dataclass
class Distillation:
    """Teacher, student and baseline with their outputs, evaluation, efficiency and gate (no
    baseline when the teacher's outputs are the reference: see :mod:`stillroom.tasks.judging`)."""

    task: TaskSpec
    config: DistillConfig
    bundle: DataBundle
    transfer: TransferSet
    teacher: TeacherRecord
    outputs: Outputs
    student: Student
    baseline: Student | None
    thresholds: dict[str, float]
    result: EvaluationResult
    efficiency: dict[str, dict[str, float]]
    gate: GateResult
    artifact_dir: Path
    selection: dict[str, Any] | None = None  # how a search chose this student (model card, report)
    data_quality: DataQuality = field(default_factory=DataQuality)
    # what the baseline was built from when not ``config.student`` (a student's ``baseline_spec()``)
    baseline_config: StudentConfig | None = None
