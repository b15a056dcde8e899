"""The inputs ``stillroom score`` reads for a medical model: an ``.npz`` archive, or PNG, JPEG and
DICOM files (one file, or a folder of them, searched recursively).

Each reader has the core's reader signature (:class:`stillroom.contract.InputFormat`),
``read(path, model, chunk_rows) -> Iterator[DataFrame]``, and reads what it needs of the model
being scored from its ``model_config`` (input shape and the preprocessing of its training images). A frame holds
``image_id`` (the archive's ``<split>/<index>``, or the file's path relative to the folder), the
``image`` column (one float32 ``(C, H, W)`` array per row, exactly as training made its images)
and, for DICOM files, the header's ``modality``, ``sex``, ``age_group``, ``site`` and
``manufacturer``. Rows come in a stable order (the archive's order; paths sorted).

Checks before any image is scored: an archive's images must have the model's channels and size
(arrays are not resized); a folder must hold at least one image. Files are read as they are
scored; an unreadable one stops the job with its name, and the output is not written.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import DataError, InputFormat, ModelInputs

from .dicom import METADATA
from .imagefiles import Preprocessing, kind_of, read_image
from .images import IMAGE, as_float_images
from .scorer import ScoringSpec

ID = "image_id"
NPZ_ORDER = ("train", "val", "test")
DICOM_COLUMNS = ("modality", *METADATA)


def is_npz(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npz"


def has_images(path: Path) -> bool:
    """A PNG, JPEG or DICOM file, or a folder holding at least one."""
    if path.is_file():
        return kind_of(path) is not None
    return path.is_dir() and any(kind_of(p) for p in _files(path))


def npz_images(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The images of an ``.npz`` archive, for the model being scored."""
    return read_npz(path, chunk_rows, tuple(_spec(model.config).shape))


def image_files(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """PNG, JPEG and DICOM files, preprocessed as the model's training images were."""
    spec = _spec(model.config)
    prep = Preprocessing.from_dict(spec.preprocessing).sized(int(spec.shape[-1]))
    return read_files(path, chunk_rows, prep)


def _spec(model_config: Mapping[str, Any]) -> ScoringSpec:
    if "shape" not in model_config:
        raise DataError(
            "the input holds images, but the model carries no image settings "
            "(not a medical model, or one registered before stillroom score read images: register it again)"
        )
    return ScoringSpec.from_config(dict(model_config))


def read_npz(path: Path, chunk_rows: int, shape: tuple[int, ...]) -> Iterator[pd.DataFrame]:
    """Every image array of the archive (``images``, or MedMNIST's ``{train,val,test}_images``)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"image archive {path} is not a readable .npz file: {type(exc).__name__}: {exc}") from None
    with archive:
        keys = ["images"] if "images" in archive.files else [f"{s}_images" for s in NPZ_ORDER if f"{s}_images" in archive.files]
        if not keys:
            raise DataError(
                f"image archive {path} holds no image array (images, or {{train,val,test}}_images): {archive.files[:10]}"
            )
        arrays = {key: archive[key] for key in keys}
    for key, images in arrays.items():
        _check_archive_shape(images, shape, f"{path.name}:{key}")
    for key, images in arrays.items():
        prefix = "" if key == "images" else key.removesuffix("_images") + "/"
        for start in range(0, len(images), chunk_rows):
            part = as_float_images(images[start : start + chunk_rows], f"{path.name}:{key}")
            ids = [f"{prefix}{i}" for i in range(start, start + len(part))]
            yield pd.DataFrame({ID: ids, IMAGE: pd.Series(list(part), dtype=object)})


def _check_archive_shape(images: np.ndarray, shape: tuple[int, ...], where: str) -> None:
    """Before any image is scored: the archive's images have the model's channels and size."""
    if len(images) == 0:
        return
    got = as_float_images(images[:1], where).shape[1:]
    if got[0] != shape[0]:
        raise DataError(f"{where}: images have {got[0]} channel(s); the model takes {shape[0]} (channels of {shape})")
    if got != tuple(shape):
        raise DataError(
            f"{where}: images are {got[2]} x {got[1]} pixels; the model takes {shape[2]} x {shape[1]} (resize them first)"
        )


def read_files(path: Path, chunk_rows: int, prep: Preprocessing) -> Iterator[pd.DataFrame]:
    """PNG, JPEG and DICOM files: ``path`` itself, or every one under the folder ``path``."""
    base = path.parent if path.is_file() else path
    files = [path] if path.is_file() else [p for p in _files(path) if kind_of(p)]
    if not files:
        raise DataError(f"folder {path} holds no PNG, JPEG or DICOM file")
    columns = DICOM_COLUMNS if any(kind_of(p) == "dicom" for p in files) else ()
    for start in range(0, len(files), chunk_rows):
        rows = []
        for file in files[start : start + chunk_rows]:
            name = file.relative_to(base).as_posix()
            image, header = read_image(file, prep, name)
            rows.append({ID: name, IMAGE: image, **{c: header.get(c, "") for c in columns}})
        yield pd.DataFrame(rows, columns=[ID, IMAGE, *columns])


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted, hidden ones (``.DS_Store``, partial outputs) left out."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


NPZ = InputFormat(
    "medical.npz", (".npz",), npz_images, "an .npz of images (MedMNIST layout, or one images array)", matches=is_npz
)
IMAGES = InputFormat("medical.images", (), image_files, "a PNG/JPEG/DICOM file or a folder of them", matches=has_images)
