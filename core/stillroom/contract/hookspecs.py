"""THE contract between the core and the verticals.

Every hook a plugin may implement, typed and documented. Hook names start with
``stillroom_``. Plugins import only the implementation marker (``from stillroom.contract import
hookimpl``); the spec marker stays private to the core. The plugin manager checks every
registered implementation against these specs (``check_pending``), so a misspelt hook name is
an error, not an implementation that silently never runs.

Groups:

* registration (broadcast, each yields named dataclasses of :mod:`stillroom.contract.specs`):
  tasks, datasets, teachers, students, evaluators, compliance profiles, input and output formats. A
  duplicate name is an error.
* teacher / student (firstresult): build a model from its config section; a plugin returns
  ``None`` to let the next one try (the core's built-in implementation runs last and uses the
  registry, MLflow URIs and estimator files).
* transfer (broadcast): contribute points to the transfer set.
* lifecycle (broadcast): before/after a distillation run and a scoring job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

if TYPE_CHECKING:
    import pandas as pd

    from .bundle import DataBundle
    from .context import RunContext, ScoringContext
    from .protocols import Student, Teacher, TeacherLoader
    from .specs import (
        ComplianceProfile,
        DatasetSpec,
        EvaluatorSpec,
        InputFormat,
        OutputFormat,
        StudentSpec,
        TaskSpec,
        TeacherSpec,
    )

PROJECT = "stillroom"
hookspec = pluggy.HookspecMarker(PROJECT)


# --- registration -------------------------------------------------------------------------


@hookspec
def stillroom_tasks() -> Iterable[TaskSpec]:
    """Declare the distillation tasks this plugin offers (``stillroom distill NAME``)."""


@hookspec
def stillroom_datasets() -> Iterable[DatasetSpec]:
    """Declare named data sources (embedded default data, file loaders)."""


@hookspec
def stillroom_teachers() -> Iterable[TeacherSpec]:
    """Declare named teacher factories (models trained or loaded by the plugin)."""


@hookspec
def stillroom_students() -> Iterable[StudentSpec]:
    """Declare named student factories."""


@hookspec
def stillroom_evaluators() -> Iterable[EvaluatorSpec]:
    """Declare evaluators; each adds metrics and artifacts for its task (``"*"``: every task)."""


@hookspec
def stillroom_compliance_profiles() -> Iterable[ComplianceProfile]:
    """Declare what every run of a task must log (checked when the run is logged)."""


@hookspec
def stillroom_input_formats() -> Iterable[InputFormat]:
    """Declare file kinds this plugin reads for batch scoring (``.smi``, SDF, DICOM, image folders).

    The core reads CSV and Parquet; a domain format belongs to the vertical that knows it.
    """


@hookspec
def stillroom_output_formats() -> Iterable[OutputFormat]:
    """Declare output file kinds this plugin writes for batch scoring (SDF), chosen by the
    output path's suffix.

    The core writes CSV and Parquet; a domain format belongs to the vertical that knows it.
    """


# --- teacher and student ------------------------------------------------------------------


@hookspec(firstresult=True)
def stillroom_make_teacher(spec: Any, task: TaskSpec, bundle: DataBundle, seed: int, load_model: TeacherLoader) -> Teacher | None:
    """Build or load the teacher described by the config's ``teacher`` section.

    ``spec`` has ``name`` (a registered teacher), or ``uri`` (``models:/name@alias``,
    ``runs:/...``, a path to a scikit-learn-compatible estimator file), and ``params``.
    ``load_model(uri)`` loads a model from MLflow for a plugin that wraps it itself (see
    :data:`~stillroom.contract.TeacherLoader`). Return ``None`` to let another plugin (finally
    the core) handle it.
    """


@hookspec(firstresult=True)
def stillroom_make_student(spec: Any, task: TaskSpec, seed: int) -> Student | None:
    """Build an untrained student from the config's ``student`` section (``name``, ``params``)."""


# --- transfer set -------------------------------------------------------------------------


@hookspec
def stillroom_transfer_points(bundle: DataBundle, config: Any, rng: np.random.Generator) -> pd.DataFrame | None:
    """Contribute unlabelled points (feature columns only) to the transfer set.

    The teacher labels every contributed point. The core contributes the unlabelled pool and
    MUNGE synthetic points when the config asks for them. The frame may carry a column
    ``__origin__`` naming where its points come from (``pool``, ``munge`` ...).
    """


# --- search -------------------------------------------------------------------------------


@hookspec
def stillroom_search_space(task: TaskSpec) -> dict[str, Any] | None:
    """The default space ``stillroom search`` explores for ``task``, or ``None`` for another task.

    A mapping of config fields under ``student.``, ``recipe.`` or ``transfer.`` to dimensions
    (:class:`~stillroom.contract.config.SearchDimension` as a mapping: ``{"low": 7, "high": 63,
    "integer": True}``, ``{"low": 0.01, "high": 0.3, "log": True}``, ``{"choices": [...]}``,
    optionally ``"when": {field: value}``). What the vertical knows matters for its students:
    the sizes worth trying, the recipe settings its benchmarks showed to decide retention. The
    user's ``search.space`` is merged over it, and every dimension is validated like the config.
    """


# --- lifecycle ----------------------------------------------------------------------------


@hookspec
def stillroom_before_run(context: RunContext) -> None:
    """Called when the MLflow run has started, before anything is logged to it.

    Everything has been computed by then (the run is the record of a finished distillation);
    an implementation may add tags and params through ``context``.
    """


@hookspec
def stillroom_after_run(context: RunContext, summary: dict[str, Any]) -> None:
    """Called after everything was logged, with the run summary (gate, metrics, version)."""


@hookspec
def stillroom_before_scoring(context: ScoringContext) -> None:
    """Called before a batch scoring job reads its input."""


@hookspec
def stillroom_after_scoring(context: ScoringContext, summary: dict[str, Any]) -> None:
    """Called after a batch scoring job wrote its output, with its summary (rows, rows/s)."""
