"""Image sources on disk: the MedMNIST ``.npz`` layout and a folder of images with a labels CSV.

Both end in a checked :class:`~stillroom_medical.images.ImageData`; every problem a user's
file can have (not an archive, a missing array, images of the wrong shape, labels out of
range, an empty split, an unreadable image) is one :class:`~stillroom.errors.DataError`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from stillroom.contract import DataError

from .images import ImageData, ImageSplit, as_float_images, check_data

NPZ_SPLITS = {"train": "train", "validation": "val", "test": "test"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def infer_task(labels: np.ndarray) -> tuple[str, int]:
    """MedMNIST labels ``(n, 1)`` -> binary/multiclass; ``(n, k>1)`` of 0/1 -> multilabel."""
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return "multilabel", arr.shape[1]
    n_classes = int(np.max(arr)) + 1 if arr.size else 0
    return ("binary" if n_classes <= 2 else "multiclass"), max(n_classes, 2)


def load_npz(path: str | Path, task_type: str | None = None, class_names: list[str] | None = None) -> ImageData:
    """A MedMNIST-layout archive: ``{train,val,test}_images`` and ``{train,val,test}_labels``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"image archive {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"image archive {p} is not a readable .npz file: {type(exc).__name__}: {exc}") from None
    needed = [f"{s}_{kind}" for s in NPZ_SPLITS.values() for kind in ("images", "labels")]
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise DataError(f"image archive {p} lacks array(s) {missing} (MedMNIST layout: {{train,val,test}}_images/_labels)")
    inferred, n_classes = infer_task(arrays["train_labels"])
    task = task_type or inferred
    if task == "multiclass" and n_classes <= 2 and task_type:
        n_classes = max(n_classes, 3)
    names = class_names or [f"class_{i}" for i in range(n_classes)]
    splits = {}
    for ours, theirs in NPZ_SPLITS.items():
        images = arrays[f"{theirs}_images"]
        if len(images) == 0:
            raise DataError(f"the {ours} split is empty")
        splits[ours] = ImageSplit(as_float_images(images, f"{ours} split"), arrays[f"{theirs}_labels"])
    return check_data(
        ImageData(**splits, task_type=task, class_names=names, source=str(p.resolve()), details={"format": "medmnist-npz"})
    )


def load_folder(
    root: str | Path,
    labels_csv: str | None = None,
    image_column: str = "image",
    label_columns: list[str] | None = None,
    split_column: str = "split",
    metadata: list[str] | None = None,
    size: int | None = None,
    channels: int = 1,
    task_type: str | None = None,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageData:
    """PNG/JPEG files under ``root`` with a labels CSV (default ``root/labels.csv``).

    The CSV names each image (path relative to ``root``), its label(s), optionally its split
    (train/validation/test; otherwise a seeded random split) and metadata columns for
    subgroups (e.g. site, sex, age group). Images are resized to ``size`` (default: the
    first image's size) and converted to grey (``channels=1``) or RGB (``channels=3``).
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"image folder {base} does not exist")
    csv = Path(labels_csv) if labels_csv else base / "labels.csv"
    table = _read_labels(csv)
    labels = label_columns or ["label"]
    reserved = {image_column, split_column, *labels}
    meta = list(metadata) if metadata is not None else [c for c in table.columns if c not in reserved]
    missing = [c for c in (image_column, *labels, *meta) if c not in table.columns]
    if missing:
        raise DataError(f"labels file {csv}: missing column(s) {missing}")
    images = _read_images(base, table[image_column].astype(str).tolist(), size, channels)
    y = table[labels].to_numpy()
    if len(labels) == 1:
        y = y[:, 0]
        if pd.isna(y).any():
            raise DataError(f"labels file {csv}: column {labels[0]!r} has missing labels")
    task = task_type or ("multilabel" if len(labels) > 1 else infer_task(y.astype(float).astype(int))[0])
    n_classes = len(labels) if task == "multilabel" else max(int(np.nanmax(y)) + 1, 2)
    names = list(labels) if task == "multilabel" else [f"class_{i}" for i in range(n_classes)]
    assignment = _assign_splits(table, split_column, valid_fraction, test_fraction, seed)
    splits = {}
    for name in ("train", "validation", "test"):
        rows = np.flatnonzero(assignment == name)
        splits[name] = ImageSplit(images[rows], y[rows], table[meta].iloc[rows].reset_index(drop=True) if meta else None)
    return check_data(
        ImageData(**splits, task_type=task, class_names=names, source=str(base.resolve()), details={"format": "image-folder"})
    )


def _read_labels(csv: Path) -> pd.DataFrame:
    if not csv.is_file():
        raise DataError(f"labels file {csv} does not exist")
    try:
        table = pd.read_csv(csv)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"labels file {csv} is empty or not a CSV: {exc}") from None
    if table.empty:
        raise DataError(f"labels file {csv} is empty")
    return table


def _read_images(base: Path, names: list[str], size: int | None, channels: int) -> np.ndarray:
    """Every image as float32 ``(n, C, size, size)``; the first one fixes the size if none is set."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if channels == 1 else "RGB"
    out = []
    for name in names:
        path = base / name
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"image {path}: only PNG and JPEG files are read")
        try:
            with Image.open(path) as img:
                img = img.convert(mode)
                if size is None:
                    size = img.size[0]
                if img.size != (size, size):
                    img = img.resize((size, size), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
        except FileNotFoundError:
            raise DataError(f"image {path} listed in the labels file does not exist") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"image {path} is not a readable PNG/JPEG: {exc}") from None
        out.append(arr)
    return as_float_images(np.stack(out), f"image folder {base}")


def _assign_splits(table: pd.DataFrame, column: str, valid_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """The CSV's split column (train/val/validation/test), or a seeded random split."""
    if column in table.columns:
        values = table[column].astype(str).str.lower().replace({"val": "validation", "valid": "validation"})
        unknown = sorted(set(values) - {"train", "validation", "test"})
        if unknown:
            raise DataError(f"labels file: split column {column!r} has unknown value(s) {unknown[:5]}")
        return values.to_numpy()
    draw = np.random.default_rng(seed).random(len(table))
    return np.where(draw < test_fraction, "test", np.where(draw < test_fraction + valid_fraction, "validation", "train"))
