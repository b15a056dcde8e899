"""Image splits in memory, and their conversion to and from the core's DataBundle.

Why a dataclass of arrays first: every source (MedMNIST ``.npz``, a folder of PNG/JPEG, the
synthetic generator) is checked once here, with messages that name the split and the
problem, before anything becomes a DataFrame. The core's :class:`~stillroom.data.DataBundle`
then holds each split as a frame whose ``image`` column has one ``(C, H, W)`` float32 array
per row, beside the label column(s) and metadata columns (site, sex, age group ...) that the
evaluator uses for subgroups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import DataError

IMAGE = "image"
TASK_TYPES = ("binary", "multiclass", "multilabel")
SPLITS = ("train", "validation", "test")


@dataclass
class ImageSplit:
    """One split: images ``(n, C, H, W)`` float32 in [0, 1], labels, optional metadata."""

    images: np.ndarray
    labels: np.ndarray  # (n,) int for binary/multiclass, (n, k) float (NaN = missing) for multilabel
    metadata: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class ImageData:
    """Train/validation/test splits of one imaging task, checked for consistency."""

    train: ImageSplit
    validation: ImageSplit
    test: ImageSplit
    task_type: str
    class_names: list[str]
    source: str
    details: dict[str, Any] = field(default_factory=dict)

    def splits(self) -> dict[str, ImageSplit]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def label_columns(self) -> list[str]:
        """One column ``label`` (binary, multiclass) or one per label (multilabel)."""
        if self.task_type == "multilabel":
            return [f"label_{name}" for name in self.class_names]
        return ["label"]


def as_float_images(images: np.ndarray, where: str) -> np.ndarray:
    """``(n, H, W)`` grey, ``(n, H, W, C)`` or ``(n, C, H, W)`` -> float32 ``(n, C, H, W)`` in [0, 1].

    MedMNIST stores uint8 ``(n, H, W)`` or ``(n, H, W, 3)``; torch wants channels first.
    A channel axis is recognised as a last or second axis of size 1 or 3.
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None, :, :]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = np.transpose(arr, (0, 3, 1, 2))
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise DataError(f"{where}: images must be (n, H, W), (n, H, W, C) or (n, C, H, W) with C = 1 or 3, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{where}: images must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float32) / 255.0).astype(np.float32)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: images hold NaN or inf values")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        if arr.min() >= 0 and arr.max() <= 255:
            return arr / 255.0
        raise DataError(f"{where}: float images must be in [0, 1] (or [0, 255]), got [{arr.min():.3g}, {arr.max():.3g}]")
    return arr


def check_labels(labels: np.ndarray, task_type: str, n_classes: int, n: int, where: str) -> np.ndarray:
    """Labels of the right shape and range for the task, as int (n,) or float (n, k)."""
    arr = np.asarray(labels)
    if task_type == "multilabel":
        if arr.ndim != 2 or arr.shape != (n, n_classes):
            raise DataError(f"{where}: multilabel labels must have shape ({n}, {n_classes}), got {arr.shape}")
        values = arr.astype(float)
        known = values[~np.isnan(values)]
        if not np.isin(known, (0.0, 1.0)).all():
            found = sorted(set(known.tolist()) - {0.0, 1.0})[:5]
            raise DataError(f"{where}: multilabel labels must be 0, 1 or missing, found {found}")
        return values
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{where}: labels must have shape ({n},) or ({n}, 1), got {arr.shape}")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any() or not np.all(arr == np.round(arr)):
            raise DataError(f"{where}: labels must be whole class numbers")
    elif arr.dtype.kind not in "iub":
        raise DataError(f"{where}: labels must be integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    bad = (out < 0) | (out >= n_classes)
    if bad.any():
        raise DataError(
            f"{where}: labels out of range 0..{n_classes - 1} for a {task_type} task: {sorted(set(out[bad].tolist()))[:5]}"
        )
    return out


def check_data(data: ImageData) -> ImageData:
    """Every split non-empty, one image shape across splits, labels valid, both classes in train."""
    shape = None
    for name, split in data.splits().items():
        if len(split) == 0:
            raise DataError(f"the {name} split is empty")
        if split.images.ndim != 4:
            raise DataError(f"{name} split: images must be (n, C, H, W), got shape {split.images.shape}")
        if shape is None:
            shape = split.images.shape[1:]
        elif split.images.shape[1:] != shape:
            raise DataError(f"{name} split: images of shape {split.images.shape[1:]} differ from train's {shape}")
        if min(split.images.shape[2:]) < 8:
            raise DataError(f"{name} split: images of {split.images.shape[2:]} pixels are too small (at least 8 x 8)")
        split.labels = check_labels(split.labels, data.task_type, len(data.class_names), len(split), f"{name} split")
        if split.metadata is not None and len(split.metadata) != len(split):
            raise DataError(f"{name} split: {len(split.metadata)} metadata rows for {len(split)} images")
    if data.task_type != "multilabel" and len(np.unique(data.train.labels)) < 2:
        raise DataError("train split: the labels hold a single class")
    return data


def to_frame(split: ImageSplit, data: ImageData) -> pd.DataFrame:
    """A split as a frame: one ``(C, H, W)`` array per row in ``image``, labels, metadata."""
    frame = pd.DataFrame({IMAGE: pd.Series(list(split.images), dtype=object)})
    if data.task_type == "multilabel":
        for j, col in enumerate(data.label_columns):
            frame[col] = split.labels[:, j]
    else:
        frame["label"] = split.labels
    if split.metadata is not None:
        for col in split.metadata.columns:
            frame[col] = split.metadata[col].astype(str).to_numpy()
    return frame


def stack(X: Any) -> np.ndarray:
    """Model inputs -> float32 ``(n, C, H, W)``: a frame with an ``image`` column, or an array."""
    if isinstance(X, pd.DataFrame):
        if IMAGE not in X.columns:
            raise DataError(f"model input has no {IMAGE!r} column (columns: {list(X.columns)[:10]})")
        cells = X[IMAGE].to_list()
        if not cells:
            raise DataError("model input has no rows")
        try:
            return np.stack([np.asarray(c, dtype=np.float32) for c in cells])
        except ValueError as exc:
            raise DataError(f"model input: images of different shapes cannot be batched ({exc})") from None
    return np.asarray(X, dtype=np.float32)


def to_bundle(data: ImageData) -> Any:
    """The core's DataBundle: frames with an image column; ``site`` (if any) as the group."""
    from stillroom.contract import DataBundle

    check_data(data)
    frames = {name: to_frame(split, data) for name, split in data.splits().items()}
    meta = [c for c in (data.train.metadata.columns if data.train.metadata is not None else []) if c in frames["test"]]
    labels = data.label_columns
    return DataBundle(
        train=frames["train"],
        validation=frames["validation"],
        test=frames["test"],
        features=[IMAGE],
        label=labels if data.task_type == "multilabel" else labels[0],
        group=meta[0] if meta else None,
        source=data.source,
        task_type=data.task_type,
        opaque_features=[IMAGE],
        class_names=list(data.class_names) if data.task_type == "multiclass" else None,
        details={
            **data.details,
            "image_shape": list(data.shape),
            "class_names": list(data.class_names),
            "metadata_columns": meta,
        },
    )
