"""What a run judges its models against: the labels, or the teacher's own outputs.

Most runs have labels: teacher, student and the no-teacher baseline are each judged against
them. A group that distils a published model often has none for the endpoint it cares about
(a screening team distilling ADMET-AI's hERG call has an in-house library, not hERG
measurements). A bundle with ``reference = "teacher"`` says so: the teacher labels every
molecule, row or image, the student fits its outputs alone, and on the held-out splits the
teacher's outputs *are* the reference: its values (regression outputs) or its calls at 0.5
(binary outputs; the teacher's probabilities stay the soft targets). Then

* there is no baseline: a student "without the teacher" has nothing to learn from;
* the teacher is not judged: against its own calls it would score perfectly by construction;
* every label metric of the student (RMSE, ROC-AUC ... with bootstrap intervals), and what a
  vertical computes from labels (inside vs outside the applicability domain, enrichment), is
  a measure of fidelity to the teacher, and the model card, the run's ``stillroom.reference``
  tag and the compliance check say so.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import ConfigError
from .kinds import BINARY, MIXED, MULTILABEL, REGRESSION, label_kinds

REFERENCES = ("labels", "teacher")
TEACHER_TASK_TYPES = (REGRESSION, BINARY, MULTILABEL, MIXED)
UNJUDGED_PREFIXES = ("teacher.", "baseline.", "baseline_fidelity.", "retention.", "gain.", "efficiency.baseline.")
"""Metric names a teacher-referenced run cannot have: the teacher's and the baseline's scores
against the reference, and the ratios built from them."""


def check_reference(reference: str, task_type: str) -> None:
    """The reference is known and, for ``teacher``, the task type's outputs can be called."""
    if reference not in REFERENCES:
        raise ConfigError(f"unknown reference {reference!r}: use one of {', '.join(REFERENCES)}")
    if reference == "teacher" and task_type not in TEACHER_TASK_TYPES:
        raise ConfigError(
            f"a teacher reference needs a task of type {', '.join(TEACHER_TASK_TYPES)}, not {task_type} "
            "(a multiclass teacher's class count is not known before it runs): give the data labels"
        )


def teacher_calls(task_type: str, output_types: list[str] | None, outputs: np.ndarray) -> np.ndarray:
    """The teacher's outputs as labels in :meth:`DataBundle.y`'s layout: values kept, probabilities
    called at 0.5 (binary: an int vector; multilabel and mixed: a float matrix)."""
    out = np.asarray(outputs, dtype=float)
    if task_type == "binary":
        return (out.reshape(-1) >= 0.5).astype(int)
    binary = binary_columns(task_type, output_types, out.shape[1])
    calls = out.copy()
    calls[:, binary] = (out[:, binary] >= 0.5).astype(float)
    return calls


def binary_columns(task_type: str, output_types: list[str] | None, n_outputs: int) -> np.ndarray:
    """Which output columns are yes/no (called at 0.5) rather than values."""
    return np.array(label_kinds(task_type, output_types, n_outputs)) == "binary"


def judged_roles(reference: str, roles: Iterable[str]) -> list[str]:
    """The roles judged against the reference: all of them against labels; all but the teacher
    when the teacher's outputs are the reference."""
    return [r for r in roles if not (reference == "teacher" and r == "teacher")]


def required_under(reference: str, metrics: Iterable[str]) -> list[str]:
    """A compliance profile's metrics that a run with this reference can log: all of them with
    labels; without the teacher's and the baseline's scores (and their ratios) otherwise."""
    return [m for m in metrics if reference != "teacher" or not m.startswith(UNJUDGED_PREFIXES)]


def scored_roles(metrics: Iterable[str], roles: Iterable[str]) -> list[str]:
    """The roles that have scores among ``metrics`` (``<role>.<metric>`` names): what a table of
    a logged run can show, whichever its reference was."""
    names = list(metrics)
    return [r for r in roles if any(m.startswith(f"{r}.") for m in names)]
