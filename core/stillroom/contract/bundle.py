"""The data a vertical hands the pipeline: splits, an optional unlabelled pool, lineage.

Splits are pandas frames; ``features`` names the model inputs and ``label`` the target
column(s), so the core can slice inputs and labels without knowing the domain. Most inputs
are numeric columns, which the core checks itself; a vertical whose input is a domain object
(a SMILES string, an image array per cell) names those columns in ``opaque_features`` and
checks them in its own loader. ``task_type`` says what the labels are (see
:mod:`stillroom.tasks.kinds`; a ``mixed`` task says it per label column in ``output_types``);
``reference`` says what the models are judged against: the labels, or, for data without any,
the teacher's own outputs (:mod:`stillroom.tasks.judging`).
``group`` (optional) names a column for subgroup rates, ``time`` one for per-day metrics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..tasks import kinds
from ..tasks.judging import check_reference
from ..tasks.kinds import DEFAULT_TASK_TYPE, MIXED, OUTPUT_TYPES, TASK_TYPES, label_kinds, single_kind_task_type


def frame_digest(df: pd.DataFrame) -> str:
    """A stable content digest of a data frame (values + column names), 16 hex chars.

    Used as the dataset digest in lineage and as a cache key for teacher outputs. Columns
    holding arrays (images) are hashed cell by cell from their bytes, shape and dtype.
    """
    h = hashlib.sha256()
    plain = [c for c in df.columns if not holds_arrays(df[c])]
    if plain:
        h.update(pd.util.hash_pandas_object(df[plain], index=False).to_numpy().tobytes())
    for col in df.columns:
        if col not in plain:
            for cell in df[col]:
                arr = np.ascontiguousarray(cell)
                h.update(f"{arr.shape}{arr.dtype}".encode())
                h.update(arr.tobytes())
    h.update("\x1f".join(map(str, df.columns)).encode())
    return h.hexdigest()[:16]


def holds_arrays(series: pd.Series) -> bool:
    """Whether a column holds one array per cell (images), which pandas cannot hash or profile."""
    return series.dtype == object and len(series) > 0 and isinstance(series.iloc[0], np.ndarray)


@dataclass
class Split:
    """One split of the data with its role (train / validation / test / unlabelled)."""

    name: str
    frame: pd.DataFrame

    @property
    def n_rows(self) -> int:
        return len(self.frame)


@dataclass
class DataBundle:
    """Everything the pipeline needs from a dataset hook.

    ``label`` is one column, or a list of columns for multilabel, multi-target regression and
    mixed tasks. ``output_types`` (mixed tasks only) gives each label column's kind, one of
    :data:`stillroom.tasks.kinds.OUTPUT_TYPES`, in label order. ``reference = "teacher"``: the label
    columns hold no values (the data has none); the teacher's outputs become the reference.
    ``drop_setting`` names the config setting that leaves an input column out of the model for
    this source (``data.drop``, ``data.features`` ...): a data guard that finds a leaking column
    tells the user to set it. ``caveats`` are what a reviewer must know about this source (the
    embedded data is synthetic ...): the model card lists them beside the task's own caveats, so
    a run on a user's real file never carries the embedded data's.
    ``details["duplicates"]`` (optional), from a loader that merged rows of the same inputs:
    ``{"rule": ..., "groups": n, "rows_merged": n, "conflicting": n}`` (the data guards judge it).
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    label: str | list[str]
    unlabelled: pd.DataFrame | None = None
    group: str | None = None
    time: str | None = None
    source: str = "unknown"
    details: dict[str, Any] = field(default_factory=dict)
    task_type: str = DEFAULT_TASK_TYPE
    opaque_features: list[str] = field(default_factory=list)
    class_names: list[str] | None = None
    output_types: list[str] | None = None
    reference: str = "labels"
    drop_setting: str | None = None
    caveats: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """The label column(s) as a list."""
        return [self.label] if isinstance(self.label, str) else list(self.label)

    @property
    def n_outputs(self) -> int:
        """Width of a model's output: 1 for binary, k classes, labels, regression targets or
        outputs of a mixed panel."""
        return kinds.n_outputs(self.task_type, self.labels, self.class_names, lambda: int(self.y(self.train).max()))

    @property
    def output_names(self) -> list[str]:
        """A name per output column (class names, label or target names)."""
        return kinds.output_names(self.task_type, self.labels, self.class_names, self.n_outputs)

    def X(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model inputs of a split, in the feature order the models were trained on."""
        return frame[self.features]

    def y(self, frame: pd.DataFrame) -> np.ndarray:
        """Labels of a split in the layout of :mod:`stillroom.tasks.targets`: int (n,) for binary and
        multiclass, float (n, k) with NaN for a missing value for multilabel, regression and
        mixed."""
        return kinds.label_array(self.task_type, frame, self.labels)

    def splits(self) -> dict[str, pd.DataFrame]:
        """Named splits, the unlabelled pool included when present."""
        out = {"train": self.train, "validation": self.validation, "test": self.test}
        if self.unlabelled is not None and len(self.unlabelled):
            out["unlabelled"] = self.unlabelled
        return out

    def lineage(self) -> dict[str, Any]:
        """Source, digest and row count of every split (logged with the run)."""
        return {
            "source": self.source,
            "task_type": self.task_type,
            "features": list(self.features),
            "label": self.label,
            **({"output_types": list(self.output_types)} if self.output_types is not None else {}),
            "reference": self.reference,
            "splits": {name: {"rows": int(len(df)), "digest": frame_digest(df)} for name, df in self.splits().items()},
            **self.details,
        }


def validate_features(frame: pd.DataFrame, features: list[str], where: str) -> None:
    """Model inputs must exist, be numeric and finite; say which column and split is wrong."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing feature column(s) {missing}")
    for col in features:
        series = frame[col]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise DataError(f"{where}: feature column {col!r} is not numeric (dtype {series.dtype})")
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: feature column {col!r} has {int(bad.sum())} NaN/inf value(s), first at row {row}")


def validate_bundle(bundle: DataBundle) -> None:
    """Every split non-empty, numeric features finite, labels valid for the task type (when the
    labels are the reference: a teacher-referenced bundle has none yet)."""
    if bundle.task_type not in TASK_TYPES:
        raise DataError(f"unknown task type {bundle.task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    check_reference(bundle.reference, bundle.task_type)
    labelled = bundle.reference == "labels"
    if bundle.task_type == MIXED:
        _validate_output_types(bundle)
    numeric = [c for c in bundle.features if c not in bundle.opaque_features]
    for name, frame in bundle.splits().items():
        if len(frame) == 0:
            raise DataError(f"the {name} split is empty")
        missing = [c for c in bundle.opaque_features if c not in frame.columns]
        if missing:
            raise DataError(f"{name} split: missing feature column(s) {missing}")
        validate_features(frame, numeric, f"{name} split")
        if name != "unlabelled" and labelled:
            _validate_labels(bundle, frame, name)
    if labelled and kinds.has_class_labels(bundle.task_type) and len(set(bundle.y(bundle.train))) < 2:
        raise DataError(f"train split: label column {bundle.labels[0]!r} has a single class")


def _validate_output_types(bundle: DataBundle) -> None:
    """A mixed task names one known kind per label column, and has both kinds."""
    kinds, labels = bundle.output_types, bundle.labels
    expected = f"one of {' or '.join(OUTPUT_TYPES)} per label column {labels}"
    if kinds is None:
        raise DataError(f"a mixed task needs output_types: {expected}")
    if len(kinds) != len(labels):
        raise DataError(f"output_types has {len(kinds)} entries for {len(labels)} label column(s); expected {expected}")
    unknown = sorted({str(k) for k in kinds} - set(OUTPUT_TYPES))
    if unknown:
        raise DataError(f"unknown output type(s) {unknown}; expected {expected}")
    if len(set(kinds)) == 1:  # its metrics, plots and compliance profile are that kind's, not a panel's
        single = single_kind_task_type(kinds[0], len(kinds))
        raise DataError(f"every output of this mixed task is {kinds[0]}: a mixed task has both kinds; use task type {single}")


def _validate_labels(bundle: DataBundle, frame: pd.DataFrame, name: str) -> None:
    """Label columns present and of their kind (0/1, 0..k-1, numeric)."""
    absent = [c for c in bundle.labels if c not in frame.columns]
    if absent:
        raise DataError(f"{name} split: missing label column(s) {absent}")
    for col, kind in zip(bundle.labels, label_kinds(bundle.task_type, bundle.output_types, len(bundle.labels)), strict=True):
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series):
            raise DataError(f"{name} split: label column {col!r} is not numeric (dtype {series.dtype})")
        if kinds.has_class_labels(bundle.task_type) and series.isna().any():
            raise DataError(f"{name} split: label column {col!r} has {int(series.isna().sum())} missing value(s)")
        problem = kinds.label_problem(kind, series, bundle.n_outputs)
        if problem:
            raise DataError(f"{name} split: label column {col!r} {problem}")


def synthetic_example(X: pd.DataFrame, n: int = 5, seed: int = 0) -> pd.DataFrame:
    """Rows drawn uniformly inside each column's range: a schema example that is no real row.

    MLflow stores the input example in clear; a real transaction, patient or molecule must
    never leave the data that way.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for col in X.columns:
        values = X[col].to_numpy(dtype=float)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        draw = rng.uniform(low, high, size=n) if high > low else np.full(n, low)
        out[col] = np.round(draw).astype(X[col].dtype) if pd.api.types.is_integer_dtype(X[col]) else draw.astype(X[col].dtype)
    return pd.DataFrame(out, columns=list(X.columns))
