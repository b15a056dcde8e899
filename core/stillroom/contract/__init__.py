"""The plugin API of stillroom: everything a vertical may import from the core.

A vertical (``stillroom-fraud``, ``stillroom-medical``, ``stillroom-molecules`` or your own)
imports only this package, :mod:`stillroom.torchkd` (torch distillation losses) and
:mod:`stillroom.testing` (pytest fixtures). What is here is kept stable: a model registered
today may load through a vertical's code that imports these names years from now. Everything
else in the core is internal and may move.

* hooks: :data:`hookimpl` marks implementations of the specs in :mod:`.hookspecs`;
* what a vertical registers: :class:`TaskSpec`, :class:`DatasetSpec`, :class:`TeacherSpec`,
  :class:`StudentSpec`, :class:`EvaluatorSpec`, :class:`ComplianceProfile`, :class:`InputFormat`;
* what models are: :class:`Teacher`, :class:`Student`, :class:`ModelDescription`,
  :class:`NativeModel`, :class:`EstimatorTeacher` (any fitted ``predict_proba`` model);
* data: :class:`DataBundle` and its checks; configuration: :class:`DistillConfig` and its sections;
* what hooks receive: :class:`RunContext`, :class:`EvaluationContext`, :class:`EvaluationResult`,
  :class:`ScoringContext`;
* task types (:mod:`stillroom.tasks`): names, shapes, and the distillation targets
  (:class:`SoftTargets` ...) a student learns from;
* shared names: roles, tag keys, :func:`metric_key`;
* services: the disk cache (:func:`cached_model`, keyed by :func:`teacher_cache_key` ...),
  progress (:data:`console`, :func:`step`), usable cores, the threads a model may use while it is
  timed (:func:`inference_threads`), a logged model's pinned requirements
  (:func:`pinned_requirements`), file hashes, generic metrics and plots
  (``from stillroom.contract import metrics, plots``: submodules, so importing the API does not
  import matplotlib);
* errors a user can cause (:class:`ConfigError`, :class:`DataError`, :class:`ModelLoadError` ...).
"""

from __future__ import annotations

import pluggy

from .._runtime import pinned_requirements, sha256_file, usable_cores
from ..cache import cache_key, cached_model, cached_outputs, default_cache_dir, mark_used
from ..errors import ConfigError, DataError, ModelLoadError, PluginError, StillroomError, first_line
from ..progress import console, step
from ..tasks.kinds import (
    BINARY,
    MIXED,
    MULTICLASS,
    MULTILABEL,
    OUTPUT_TYPES,
    REGRESSION,
    TASK_TYPES,
    as_task_output,
    has_class_labels,
    has_scalar_output,
    label_kinds,
    output_kinds,
    single_kind_task_type,
)
from ..tasks.targets import (
    MixedTargets,
    MulticlassTargets,
    MultilabelTargets,
    RegressionTargets,
    SoftTargets,
    Targets,
    labels_only,
    make_targets,
)
from .bundle import DataBundle, frame_digest, holds_arrays, synthetic_example, validate_bundle, validate_features
from .compute import inference_threads, thread_budget, training_threads
from .config import (
    DataSettings,
    DistillConfig,
    EvaluationConfig,
    GateConfig,
    GuardsConfig,
    OperatingPoint,
    RecipeConfig,
    RunSettings,
    StrictModel,
    StudentConfig,
    TeacherConfig,
    TransferConfig,
)
from .context import CORE_OPERATING_POINT, EvaluationContext, EvaluationResult, OperatingPointRecord, RunContext, ScoringContext
from .estimator import EstimatorTeacher, estimator_parameters, pickled_size
from .hookspecs import PROJECT
from .identity import data_identity, teacher_cache_key
from .names import INPUT_ALIASES, INPUT_FORMAT_SETTINGS_TAG, INPUT_FORMAT_TAG, ROLES, TAG_PREFIX, metric_key, output_metric_key
from .protocols import ModelDescription, NativeModel, Student, Teacher, TeacherLoader
from .specs import (
    ComplianceProfile,
    DatasetSpec,
    EvaluatorSpec,
    FormatReader,
    InputColumn,
    InputFormat,
    ModelInputs,
    OutputFormat,
    OutputWriter,
    StudentSpec,
    TaskSpec,
    TeacherSpec,
)

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a function (or method) as the implementation of a stillroom hook."""

__all__ = [
    "BINARY",
    "MIXED",
    "MULTICLASS",
    "MULTILABEL",
    "OUTPUT_TYPES",
    "REGRESSION",
    "ROLES",
    "TAG_PREFIX",
    "TASK_TYPES",
    "ComplianceProfile",
    "ConfigError",
    "DataBundle",
    "DataError",
    "DataSettings",
    "GuardsConfig",
    "INPUT_FORMAT_SETTINGS_TAG",
    "INPUT_ALIASES",
    "INPUT_FORMAT_TAG",
    "DatasetSpec",
    "DistillConfig",
    "EstimatorTeacher",
    "EvaluationConfig",
    "EvaluationContext",
    "EvaluationResult",
    "OperatingPointRecord",
    "CORE_OPERATING_POINT",
    "EvaluatorSpec",
    "FormatReader",
    "GateConfig",
    "InputColumn",
    "InputFormat",
    "OutputFormat",
    "OutputWriter",
    "MixedTargets",
    "ModelDescription",
    "ModelInputs",
    "ModelLoadError",
    "MulticlassTargets",
    "MultilabelTargets",
    "NativeModel",
    "OperatingPoint",
    "PluginError",
    "RecipeConfig",
    "RegressionTargets",
    "RunContext",
    "RunSettings",
    "ScoringContext",
    "SoftTargets",
    "StillroomError",
    "StrictModel",
    "Student",
    "StudentConfig",
    "StudentSpec",
    "Targets",
    "TaskSpec",
    "Teacher",
    "TeacherConfig",
    "TeacherLoader",
    "TeacherSpec",
    "TransferConfig",
    "as_task_output",
    "cache_key",
    "data_identity",
    "teacher_cache_key",
    "cached_model",
    "cached_outputs",
    "console",
    "default_cache_dir",
    "estimator_parameters",
    "first_line",
    "frame_digest",
    "has_class_labels",
    "has_scalar_output",
    "holds_arrays",
    "hookimpl",
    "inference_threads",
    "training_threads",
    "label_kinds",
    "labels_only",
    "make_targets",
    "mark_used",
    "metric_key",
    "output_kinds",
    "output_metric_key",
    "pickled_size",
    "pinned_requirements",
    "sha256_file",
    "single_kind_task_type",
    "step",
    "synthetic_example",
    "thread_budget",
    "usable_cores",
    "validate_bundle",
    "validate_features",
]
