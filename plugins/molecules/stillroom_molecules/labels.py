"""The labels a teacher trains on, checked: every target learnable from the training split.

A target column can be full in the file and still empty in the training split (a scaffold
split can send every labelled molecule of a sparse endpoint to test), and a yes/no endpoint
can have one class only there. A model then either fails deep inside its library or learns a
constant; either way the run must stop before training, in one line that names the target
and the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stillroom.contract import ConfigError, DataBundle, output_kinds


def training_labels(bundle: DataBundle, frame: pd.DataFrame, teacher: str, where: str) -> np.ndarray:
    """(n, k) float labels of ``frame`` (NaN = missing), once each target is checked learnable."""
    targets = list(bundle.details["targets"])
    Y = frame[targets].to_numpy(dtype=float)
    kinds = output_kinds(bundle.details.get("task_type", "regression"), len(targets), bundle.details.get("output_types"))
    for j, (name, kind) in enumerate(zip(targets, kinds, strict=True)):
        values = Y[~np.isnan(Y[:, j]), j]
        if values.size == 0:
            raise ConfigError(
                f"teacher {teacher}: target {name!r} has no label in the {where} ({len(frame):,} molecules): "
                "drop it from data.targets or use data.split=random"
            )
        if kind != "regression" and np.unique(values).size < 2:
            raise ConfigError(
                f"teacher {teacher}: target {name!r} has one class only ({int(values[0])}) in the {where}: "
                "a classifier cannot learn it; drop it from data.targets"
            )
    return Y
