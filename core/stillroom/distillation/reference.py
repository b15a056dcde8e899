"""Runs without labels: the teacher's outputs become the reference of the held-out splits.

The rules of judging against the teacher (its calls at 0.5, who is judged) are task-type rules
and live in :mod:`stillroom.tasks.judging`; this is the pipeline step that applies them to a
:class:`~stillroom.contract.DataBundle` once the teacher has labelled validation and test.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..contract import DataBundle
from ..errors import DataError
from ..tasks.judging import binary_columns, teacher_calls


def with_teacher_reference(bundle: DataBundle, validation: np.ndarray, test: np.ndarray) -> DataBundle:
    """A copy of the bundle whose validation and test labels are the teacher's calls.

    Train labels stay missing: the student learns the teacher's outputs on them, not its calls.
    A binary output the teacher calls one way on every held-out row leaves ROC-AUC undefined:
    that is a data error (a larger or more varied set of molecules, rows or images is needed).
    """
    labels = bundle.labels
    binary = binary_columns(bundle.task_type, bundle.output_types, len(labels))
    frames = {}
    for name, frame, outputs in (("validation", bundle.validation, validation), ("test", bundle.test, test)):
        calls = teacher_calls(bundle.task_type, bundle.output_types, outputs)
        matrix = calls.reshape(len(frame), -1)
        for j in np.flatnonzero(binary):
            if len(np.unique(matrix[:, j])) < 2:
                raise DataError(
                    f"the teacher calls every {name} row {int(matrix[0, j])} for {labels[j]!r}: nothing to judge the "
                    "student's ranking against; give more, or more varied, rows"
                )
        frames[name] = _relabelled(frame, labels, matrix)
    return replace(bundle, validation=frames["validation"], test=frames["test"])


def _relabelled(frame: pd.DataFrame, labels: list[str], matrix: np.ndarray) -> pd.DataFrame:
    out = frame.copy()
    for j, column in enumerate(labels):
        out[column] = matrix[:, j]
    return out
