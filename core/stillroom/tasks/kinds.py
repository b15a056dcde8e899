"""Task types and the shapes of their labels and outputs: the rules every other layer asks for.

A task type says what a model predicts and how it is judged:

* ``binary``: one yes/no label (int 0/1); output: P(positive), shape (n,);
* ``multiclass``: one label of k classes (int 0..k-1); output: class probabilities (n, k);
* ``multilabel``: k yes/no labels (float, NaN = missing); output: probabilities (n, k);
* ``regression``: k real-valued targets (float, NaN = missing); output: values (n, k);
* ``mixed``: a panel of value and yes/no outputs (logD beside hERG); each label column's kind is
  one of :data:`OUTPUT_TYPES`, in ``output_types``; output (n, k), a value or a probability per
  column.

Everything in stillroom that depends on the task type asks this module (or
:mod:`stillroom.tasks.types` for what a type reports), so a rule is written once and a new task
type is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

BINARY, MULTICLASS, MULTILABEL, REGRESSION, MIXED = "binary", "multiclass", "multilabel", "regression", "mixed"
TASK_TYPES = (BINARY, MULTICLASS, MULTILABEL, REGRESSION, MIXED)
OUTPUT_TYPES = (REGRESSION, BINARY)
"""What one output column of a ``mixed`` task is."""
DEFAULT_TASK_TYPE = BINARY
ROLES = ("teacher", "student", "baseline")
"""The models of a distillation run: the teacher, the distilled student and the same student
trained without the teacher (the baseline)."""


def check_task_type(task_type: str) -> None:
    """A known task type, or a ``ValueError`` listing them."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")


def has_class_labels(task_type: str) -> bool:
    """Whether the labels are one column of class indices (binary, multiclass), never missing,
    rather than one float column per output with NaN for a missing value."""
    return task_type in (BINARY, MULTICLASS)


def has_scalar_output(task_type: str) -> bool:
    """Whether a model's output is one probability per row, shape (n,) (binary): the task type
    with an operating threshold, alert metrics and a stored score histogram for drift."""
    return task_type == BINARY


def single_kind_task_type(kind: str, n_outputs: int) -> str:
    """The task type of ``n_outputs`` outputs all of one kind (one of :data:`OUTPUT_TYPES`):
    regression, binary for one yes/no output, multilabel for several."""
    return REGRESSION if kind == REGRESSION else (BINARY if n_outputs == 1 else MULTILABEL)


def label_kinds(task_type: str, output_types: Sequence[str] | None, n_labels: int) -> list[str]:
    """What each of ``n_labels`` label columns holds: ``binary`` (0/1), ``multiclass`` (0..k-1) or
    ``regression`` (real values); a multilabel task's columns are binary, a mixed task's are its
    output types."""
    if task_type == MIXED:
        return list(output_types or ())
    return [{MULTILABEL: BINARY}.get(task_type, task_type)] * n_labels


def output_kinds(task_type: str, n_outputs: int, output_types: Sequence[str] | None = None) -> tuple[str, ...]:
    """What each output column is: ``regression`` (a value), ``binary`` (a probability; a
    multilabel column is one) or ``multiclass`` (a class probability); a mixed task's from its
    own list, which must name one of :data:`OUTPUT_TYPES` per output."""
    if task_type == MIXED:
        kinds = tuple(output_types or ())
        if len(kinds) != n_outputs or not set(kinds) <= set(OUTPUT_TYPES):
            raise ValueError(f"a mixed task needs one of {OUTPUT_TYPES} per output, got {list(kinds)} for {n_outputs}")
        return kinds
    kind = task_type if task_type in (REGRESSION, MULTICLASS) else BINARY
    return (kind,) * n_outputs


def label_problem(kind: str, series: pd.Series, n_classes: int) -> str | None:
    """What is wrong with a numeric label column of one kind (``None`` if nothing): 0/1 for a
    yes/no label, class indices 0..k-1, finite values for a real-valued target."""
    values = set(pd.unique(series.dropna()))
    if kind == BINARY and not values <= {0, 1}:
        return f"must be 0/1, found {sorted(map(str, values))[:5]}"
    if kind == MULTICLASS:
        bad = sorted(v.item() if hasattr(v, "item") else v for v in values if not (float(v).is_integer() and 0 <= v < n_classes))
        if bad:
            return f"must hold class indices 0..{n_classes - 1}, found {bad[:5]}"
    if kind == REGRESSION and not np.isfinite(series.dropna().to_numpy(dtype=float)).all():
        return "has inf value(s)"
    return None


def n_outputs(task_type: str, labels: Sequence[str], class_names: Sequence[str] | None, max_label: Callable[[], int]) -> int:
    """Width of a model's output: 1 for binary, k classes (from the names, else the largest
    training label + 1, asked of ``max_label`` only then), else one per label column."""
    if task_type == BINARY:
        return 1
    if task_type == MULTICLASS:
        return len(class_names) if class_names else int(max_label()) + 1
    return len(labels)


def output_names(task_type: str, labels: Sequence[str], class_names: Sequence[str] | None, width: int) -> list[str]:
    """A name per output column: class names (or positions) for multiclass, the label columns otherwise."""
    if task_type == MULTICLASS:
        return list(class_names or [str(i) for i in range(width)])
    return list(labels)


def label_array(task_type: str, frame: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """Labels of a split in the layout of :mod:`stillroom.tasks.targets`: int (n,) for binary and
    multiclass, float (n, k) with NaN for a missing value otherwise."""
    if has_class_labels(task_type):
        return frame[labels[0]].to_numpy().astype(int)
    return frame[list(labels)].to_numpy(dtype=float, na_value=np.nan)


def conform_outputs(task_type: str, values: object, width: int, rows: int | None = None) -> np.ndarray:
    """A model's outputs in the task type's shape ((n,) binary, (n, k) otherwise), as floats.

    A one-column binary output is flattened and a one-output regression vector made a column;
    any other mismatch (a regressor where a classifier was expected, three classes where the
    labels have two) is a ``ValueError`` saying which shape was needed.
    """
    out = np.asarray(values, dtype=float)
    if has_scalar_output(task_type) and out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if task_type in (REGRESSION, MIXED) and out.ndim == 1 and width == 1:
        out = out[:, None]
    expected = (rows if rows is not None else len(out),) + (() if has_scalar_output(task_type) else (width,))
    if out.shape != expected:
        raise ValueError(f"have shape {out.shape}; a {task_type} task with {width} output(s) needs {expected}")
    return out


def as_task_output(values: object, task_type: str) -> np.ndarray:
    """(n, k) model output -> the task type's shape ((n,) for binary): what a student built on
    (n, k) matrices returns from ``predict``."""
    out = np.asarray(values, dtype=float)
    if out.ndim == 1:
        out = out[:, None]
    return out[:, 0] if has_scalar_output(task_type) else out
