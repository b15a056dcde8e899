"""A split's outputs of every model beside its labels, logged with the run (the test split in a
distillation run, the validation split in a search trial).

Why: every test metric, interval and gate verdict of a run is computed from these numbers. A
reviewer who has them can recompute any figure of the model card with their own tools, and two
runs on the same data (a searched student and the default one, two recipes) can be compared row
by row, with a paired interval, which their separate intervals cannot do; a search compares each
trial with the default student that way on validation. Labels and outputs only: no input feature
is copied out of the training environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..contract.bundle import DataBundle


def path_for(split: str) -> str:
    """Where a split's table is, under the run's artifacts."""
    return f"predictions/{split}.parquet"


FILE = path_for("test")
"""The test table of a distillation run."""


def write_predictions(
    bundle: DataBundle, outputs: dict[str, np.ndarray], root: Path, split: Literal["test", "validation"] = "test"
) -> Path:
    """``row`` (the split frame's index), the label column(s), one column per model output per
    role (``student`` or ``student.<output>``); returns the file written under ``root``."""
    frame = bundle.test if split == "test" else bundle.validation
    table = pd.DataFrame({"row": frame.index.astype(str)})
    columns = _columns("label", bundle.y(frame), bundle.labels)
    for role, values in outputs.items():
        columns |= _columns(role, values, bundle.output_names)
    table = pd.concat([table, pd.DataFrame(columns)], axis=1)
    path = root / path_for(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


def role_values(table: pd.DataFrame, role: str) -> np.ndarray:
    """A role's (or ``label``'s) values as the evaluation saw them: (n,) for one column, (n, k)
    for several, in their logged order."""
    if role in table.columns:
        return table[role].to_numpy()
    wide = [c for c in table.columns if c.startswith(f"{role}.")]
    if not wide:
        raise KeyError(f"no column for {role!r} in the predictions (columns: {', '.join(table.columns)})")
    return table[wide].to_numpy()


def _columns(prefix: str, values: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    values = np.asarray(values)
    if values.ndim == 1 or values.shape[1] == 1:
        return {prefix: values.reshape(len(values))}
    return {f"{prefix}.{name}": values[:, j] for j, name in enumerate(names)}
