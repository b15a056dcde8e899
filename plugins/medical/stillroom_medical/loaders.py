"""Image sources on disk: the MedMNIST ``.npz`` layout (with an optional metadata CSV) and a
folder of PNG, JPEG or DICOM files with a labels CSV.

Both end in a checked :class:`~stillroom_medical.images.ImageData` that records how its images
were made (``details["preprocessing"]``, shipped with the student so scoring repeats it); every
problem a user's file can have (not an archive, a missing array, images of the wrong shape,
labels out of range, an empty split, an unreadable image, a DICOM without pixels) is one
:class:`~stillroom.errors.DataError`.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from stillroom.contract import DataError

from .dicom import METADATA, UNKNOWN, DicomSettings
from .imagefiles import Preprocessing, kind_of, read_image
from .images import ImageData, ImageSplit, as_float_images, check_data

NPZ_SPLITS = {"train": "train", "validation": "val", "test": "test"}
SPLIT_NAMES = {"val": "validation", "valid": "validation"}


def infer_task(labels: np.ndarray) -> tuple[str, int]:
    """MedMNIST labels ``(n, 1)`` -> binary/multiclass; ``(n, k>1)`` of 0/1 -> multilabel."""
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return "multilabel", arr.shape[1]
    n_classes = int(np.max(arr)) + 1 if arr.size else 0
    return ("binary" if n_classes <= 2 else "multiclass"), max(n_classes, 2)


def load_npz(
    path: str | Path, task_type: str | None = None, class_names: list[str] | None = None, metadata_csv: str | None = None
) -> ImageData:
    """A MedMNIST-layout archive: ``{train,val,test}_images`` and ``{train,val,test}_labels``;
    ``metadata_csv`` gives subgroup columns per image (see :func:`npz_metadata`)."""
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
    names = class_names or _names_in_archive(arrays, n_classes, p) or default_class_names(task, n_classes)
    sizes = {ours: len(arrays[f"{theirs}_images"]) for ours, theirs in NPZ_SPLITS.items()}
    metadata = npz_metadata(Path(metadata_csv), sizes) if metadata_csv else {}
    splits = {}
    for ours, theirs in NPZ_SPLITS.items():
        images = arrays[f"{theirs}_images"]
        if len(images) == 0:
            raise DataError(f"the {ours} split is empty")
        splits[ours] = ImageSplit(as_float_images(images, f"{ours} split"), arrays[f"{theirs}_labels"], metadata.get(ours))
    shape = splits["train"].images.shape[1:]
    details = {"format": "medmnist-npz", "preprocessing": Preprocessing(shape[-1], shape[0]).as_dict()}
    return check_data(ImageData(**splits, task_type=task, class_names=names, source=str(p.resolve()), details=details))


def default_class_names(task_type: str, n_classes: int) -> list[str]:
    """Names when neither the data nor ``data.class_names`` gives any: ``negative``/``positive``
    for a binary task (what 0 and 1 mean there), the class number otherwise. Set
    ``data.class_names`` (e.g. ``[normal, pneumonia]``) for the card and the scoring output."""
    if task_type == "binary" and n_classes == 2:
        return ["negative", "positive"]
    return [f"class {i}" for i in range(n_classes)]


def _names_in_archive(arrays: dict[str, np.ndarray], n_classes: int, path: Path) -> list[str] | None:
    """An archive's own ``class_names`` array (text, one per class), if it has one."""
    names = arrays.get("class_names")
    if names is None:
        return None
    if names.dtype.kind not in "US" or names.ndim != 1 or len(names) != n_classes:
        raise DataError(
            f"image archive {path}: class_names must be {n_classes} text value(s), one per class; got {names!r}"[:300]
        )
    return [str(n) for n in names]


def npz_metadata(csv: Path, sizes: dict[str, int]) -> dict[str, pd.DataFrame]:
    """Subgroup columns for the images of an archive: a CSV with ``split`` (train/val/test) and
    ``index`` (the image's position in its split's array) and one column per attribute (site,
    sex, age group ...). Every image needs exactly one row: a subgroup table over part of the
    data would misstate the groups."""
    table = _read_labels(csv)
    missing = [c for c in ("split", "index") if c not in table.columns]
    if missing or len(table.columns) < 3:
        raise DataError(f"metadata file {csv}: needs columns split, index and at least one attribute (missing: {missing})")
    table["split"] = table["split"].astype(str).str.lower().replace(SPLIT_NAMES)
    unknown = sorted(set(table["split"]) - set(sizes))
    if unknown:
        raise DataError(f"metadata file {csv}: unknown split value(s) {unknown[:5]} (use train, val, test)")
    if table.duplicated(["split", "index"]).any():
        first = table[table.duplicated(["split", "index"])].iloc[0]
        raise DataError(f"metadata file {csv}: several rows for {first['split']} index {first['index']}")
    out = {}
    for split, n in sizes.items():
        part = table[table["split"] == split].set_index("index")
        absent = sorted(set(range(n)) - set(part.index))
        extra = sorted(set(part.index) - set(range(n)))
        if absent or extra:
            what = f"no row for index {absent[:5]}" if absent else f"index {extra[:5]} beyond its {n} images"
            raise DataError(f"metadata file {csv}: the {split} split has {what}")
        out[split] = part.sort_index().drop(columns="split").reset_index(drop=True).astype(str)
    return out


def load_folder(
    root: str | Path,
    labels_csv: str | None = None,
    image_column: str = "image",
    label_columns: list[str] | None = None,
    split_column: str = "split",
    metadata: list[str] | None = None,
    size: int | None = None,
    channels: int = 1,
    size_policy: str = "resize",
    dicom: DicomSettings | None = None,
    task_type: str | None = None,
    class_names: list[str] | None = None,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageData:
    """PNG, JPEG or DICOM files under ``root`` with a labels CSV (default ``root/labels.csv``).

    The CSV names each image (path relative to ``root``), its label(s), optionally its split
    (train/validation/test; otherwise a seeded random split) and metadata columns for
    subgroups (e.g. site, sex, age group). Images are resized to ``size`` (default: the
    first image's width) under ``size_policy`` and converted to grey (``channels=1``) or RGB
    (``channels=3``); DICOM values are windowed as ``dicom`` says, and their headers add the
    subgroup columns sex, age group, site and manufacturer where the CSV has none of that name.
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
    prep = Preprocessing(size, channels, size_policy, dicom or DicomSettings())
    images, headers, prep = _read_images(base, table[image_column].astype(str).tolist(), prep)
    if headers is not None:
        modalities = sorted(set(headers.pop("modality")) - {UNKNOWN})
        prep = replace(prep, dicom=replace(prep.dicom, modalities=prep.dicom.modalities or tuple(modalities)))
        added = [c for c in METADATA if c not in table.columns]
        table = pd.concat([table, headers[added]], axis=1)
        meta += added
    y = table[labels].to_numpy()
    if len(labels) == 1:
        y = y[:, 0]
        if pd.isna(y).any():
            raise DataError(f"labels file {csv}: column {labels[0]!r} has missing labels")
    task = task_type or ("multilabel" if len(labels) > 1 else infer_task(y.astype(float).astype(int))[0])
    n_classes = len(labels) if task == "multilabel" else max(int(np.nanmax(y)) + 1, 2)
    names = list(labels) if task == "multilabel" else class_names or default_class_names(task, n_classes)
    assignment = _assign_splits(table, split_column, valid_fraction, test_fraction, seed)
    splits = {}
    for name in ("train", "validation", "test"):
        rows = np.flatnonzero(assignment == name)
        splits[name] = ImageSplit(images[rows], y[rows], table[meta].iloc[rows].reset_index(drop=True) if meta else None)
    details = {"format": "image-folder", "preprocessing": prep.as_dict()}
    return check_data(ImageData(**splits, task_type=task, class_names=names, source=str(base.resolve()), details=details))


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


def _read_images(base: Path, names: list[str], prep: Preprocessing) -> tuple[np.ndarray, pd.DataFrame | None, Preprocessing]:
    """Every image as float32 ``(n, C, size, size)`` (the first one fixes the size if none is
    set), the DICOM header metadata (``None`` without DICOM files) and the preprocessing used."""
    images, headers = [], []
    for name in names:
        path = base / name
        if not path.exists():
            raise DataError(f"image {path} listed in the labels file does not exist")
        if kind_of(path) is None:
            raise DataError(f"image {path}: only PNG, JPEG and DICOM files are read")
        image, header = read_image(path, prep, str(path))
        prep = prep if prep.size else prep.sized(image.shape[-1])
        images.append(image)
        headers.append(header)
    frame = pd.DataFrame([h or {"modality": UNKNOWN} for h in headers]).fillna(UNKNOWN) if any(headers) else None
    return np.stack(images), frame, prep


def _assign_splits(table: pd.DataFrame, column: str, valid_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """The CSV's split column (train/val/validation/test), or a seeded random split."""
    if column in table.columns:
        values = table[column].astype(str).str.lower().replace(SPLIT_NAMES)
        unknown = sorted(set(values) - {"train", "validation", "test"})
        if unknown:
            raise DataError(f"labels file: split column {column!r} has unknown value(s) {unknown[:5]}")
        return values.to_numpy()
    draw = np.random.default_rng(seed).random(len(table))
    return np.where(draw < test_fraction, "test", np.where(draw < test_fraction + valid_fraction, "validation", "train"))
