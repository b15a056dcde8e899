"""Protocols every teacher and student satisfies, and the descriptions they return.

The core never knows which library a model comes from: it talks to teachers and students
only through these protocols. A student hands the tracking module a :class:`NativeModel`
(flavor + object) instead of logging itself, so that only ``stillroom.tracking`` imports
MLflow and every student is stored in a native, non-pickle format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ..tasks.targets import Targets


@dataclass(frozen=True)
class ModelDescription:
    """What a reviewer needs to know about a model without opening it."""

    name: str
    kind: str
    n_parameters: int
    size_bytes: int
    uri: str | None = None
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NativeModel:
    """A trained model in a form the tracking module can log natively.

    ``flavor`` names the MLflow flavor (``"lightgbm"``, ``"sklearn"``, ``"pytorch"``,
    ``"onnx"``, ``"pyfunc"``); ``model`` is the object that flavor's ``log_model`` accepts.
    ``signature`` and ``input_example`` override what the core would infer from a synthetic
    tabular example (a tensor input needs its own); ``log_kwargs`` go to ``log_model`` as
    they are (``artifacts``, ``code_paths``, ``extra_pip_requirements`` ...); without
    ``pip_requirements`` the core pins the distributions the model's classes come from, with
    the flavor's loader and their dependencies (:func:`pinned_requirements` builds a list of
    your own: a pyfunc whose code imports more than its object holds needs one). ``scratch``:
    directories written only so the model can be logged (a pyfunc's ``artifacts``), removed by
    the core once it has logged the model (or failed to): a run must not leave its model files
    in the temp folder, a daily scoring host would fill it.
    """

    flavor: str
    model: Any
    signature: Any = None
    input_example: Any = None
    log_kwargs: dict[str, Any] = field(default_factory=dict)
    scratch: tuple[str, ...] = ()


TeacherLoader = Callable[[str], tuple[Callable[[Any], Any] | None, dict[str, Any]]]
"""``load_model(uri)``, handed to ``stillroom_make_teacher``: a model from MLflow (``models:/NAME@ALIAS``,
``models:/NAME/N``, ``runs:/...``) as ``(predict, facts)``. ``predict`` returns outputs of a frame
(probabilities for a classifier); ``facts`` has ``flavor``, ``object`` (the flavor's own model,
e.g. a torch module, for a teacher whose internals a student learns from), and for a registered
model ``name``, ``version``, ``model_id`` and ``pinned_uri`` (the alias resolved to one version)."""


@runtime_checkable
class Teacher(Protocol):
    """A big, slow, accurate model whose behaviour the student learns.

    ``predict`` returns the task type's outputs (:mod:`stillroom.targets`): for binary tasks
    the probability of the positive class, shape (n,); class or label probabilities, or
    regression values, or a mixed panel's values and probabilities, shape (n, k) otherwise.
    ``native_model`` returns the teacher in a loggable form, or ``None`` when it already
    lives in MLflow (then ``describe().uri`` points at it).

    A teacher (or student) that can score in several runtimes (a network in torch and in ONNX
    Runtime) may add ``runtimes() -> dict[name, predict]``, the one it ships in first: the
    run times teacher, student and baseline interleaved in every runtime all three offer
    (:func:`stillroom.distillation.pipeline.time_models`); without it, ``predict`` is timed.
    """

    def predict(self, X: Any) -> np.ndarray: ...

    def describe(self) -> ModelDescription: ...

    def native_model(self) -> NativeModel | None: ...


@runtime_checkable
class Student(Protocol):
    """A small, fast model trained from teacher outputs (or from labels alone, as baseline).

    ``targets`` (:mod:`stillroom.targets`: ``SoftTargets`` for binary tasks, or the
    multiclass / multilabel / regression / mixed kinds) carries the teacher's outputs, the hard
    labels, the temperature and alpha: a student minimises that loss and predicts on the
    teacher's scale (temperature 1). The baseline gets targets without a teacher. ``targets_valid`` is
    for early stopping.

    A student that learns from the teacher's internals (feature- or relation-based
    distillation) sets ``uses_teacher_model = True`` and has ``attach_teacher(teacher)``: the
    pipeline then keeps the teacher and hands it over before ``fit`` (never to the baseline).
    Such a teacher offers ``features(x)`` (e.g. per-stage feature maps and an embedding for a
    torch network; what exactly is between the vertical's teacher and student).

    A student shipped in several native forms (ONNX for serving, TorchScript for torch users)
    may add ``extra_native_models() -> dict[name, NativeModel]``: each is logged as a further
    model of the run; ``native_model()`` is the one registered.

    A student whose logged model names its outputs (a pyfunc returning one column per
    endpoint) may add ``name_outputs(names)``: the pipeline calls it before ``fit`` with the
    data's output names (target columns, labels or classes), so a scoring job gets
    ``logD``/``hERG`` columns instead of positions.

    A student that chooses what it ships among candidates (kind, capacity) may add
    ``baseline_spec() -> {"name": ..., "params": {...}}`` (a ``StudentConfig``), called once it
    is fitted: the baseline is then built from it, i.e. the model the student chose trained on
    labels only, rather than a second choice of its own; the run logs it as ``baseline.name``
    and ``baseline.params.*``.
    """

    def fit(
        self,
        X: Any,
        targets: Targets,
        X_valid: Any | None = None,
        targets_valid: Targets | None = None,
    ) -> Student: ...

    def predict(self, X: Any) -> np.ndarray: ...

    def describe(self) -> ModelDescription: ...

    def native_model(self) -> NativeModel: ...
