"""One image file (PNG, JPEG or DICOM) -> the model's input array, the same way at training and
at scoring.

:class:`Preprocessing` is what a model was trained with: image size, channels, what to do with
files of another size (``size_policy``) and how DICOM values are windowed. The dataset records
it, the student ships it with the model (``model_config``), and a scoring job's reader applies
it to new files, so a scored image goes through exactly the code its training images went
through.

* ``size_policy``: ``resize`` (default: any size, resized to the model's), ``no_upscale``
  (refuse images smaller than the model's input: upscaling invents detail), ``exact``
  (refuse any other size);
* channels: grey images feed a 3-channel model as three equal channels; colour images feed a
  grey model as luminance (ITU-R 601, as Pillow's ``L``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stillroom.contract import DataError

from .dicom import DicomSettings, is_dicom, read_dicom

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
SIZE_POLICIES = ("resize", "no_upscale", "exact")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """How files become model inputs; ``size`` None (training only): the first image's width."""

    size: int | None = None
    channels: int = 1
    size_policy: str = "resize"
    dicom: DicomSettings = field(default_factory=DicomSettings)

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "size_policy": self.size_policy, "dicom": self.dicom.as_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Preprocessing:
        return cls(
            raw.get("size"),
            int(raw.get("channels", 1)),
            raw.get("size_policy", "resize"),
            DicomSettings.from_dict(raw.get("dicom") or {}),
        )

    def sized(self, size: int) -> Preprocessing:
        return replace(self, size=size)


def kind_of(path: Path) -> str | None:
    """``raster`` (PNG/JPEG by suffix), ``dicom`` (suffix or the DICM marker), else ``None``."""
    if path.suffix.lower() in RASTER_SUFFIXES:
        return "raster"
    return "dicom" if is_dicom(path) else None


def read_image(path: Path, prep: Preprocessing, name: str | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """The file as float32 ``(C, size, size)`` in [0, 1], and its header metadata (DICOM only)."""
    name = name or str(path)
    kind = kind_of(path)
    if kind == "raster":
        return _raster(path, prep, name), {}
    if kind == "dicom":
        values, metadata = read_dicom(path, prep.dicom, name)
        return _fit(values, prep, name), metadata
    raise DataError(f"image {name}: not a PNG, JPEG or DICOM file")


def _raster(path: Path, prep: Preprocessing, name: str) -> np.ndarray:
    """PNG/JPEG through Pillow: converted to grey or RGB, resized as 8-bit, then scaled to [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if prep.channels == 1 else "RGB")
            size = prep.size or img.size[0]
            _check_size(img.size, size, prep.size_policy, name)
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image {name} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image {name} is not a readable PNG/JPEG: {exc}") from None
    arr = arr[None] if arr.ndim == 2 else np.transpose(arr, (2, 0, 1))
    return arr.astype(np.float32) / 255.0


def _fit(values: np.ndarray, prep: Preprocessing, name: str) -> np.ndarray:
    """DICOM values ``(H, W)`` or ``(H, W, 3)`` -> ``(C, size, size)``: channels, size policy, resize."""
    from PIL import Image

    if values.ndim == 3 and prep.channels == 1:
        values = values @ LUMA
    planes = [values] if values.ndim == 2 else [values[..., c] for c in range(3)]
    height, width = planes[0].shape
    size = prep.size or width
    _check_size((width, height), size, prep.size_policy, name)
    if (width, height) != (size, size):
        planes = [
            np.asarray(Image.fromarray(p.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR)) for p in planes
        ]
    out = np.stack(planes).astype(np.float32)
    if out.shape[0] != prep.channels:
        out = np.repeat(out, prep.channels, axis=0)
    return out.clip(0.0, 1.0)


def _check_size(actual: tuple[int, int], size: int, policy: str, name: str) -> None:
    """The size policy: ``exact`` and ``no_upscale`` refuse what ``resize`` would silently change."""
    width, height = actual
    if policy == "exact" and (width, height) != (size, size):
        raise DataError(f"image {name} is {width} x {height} pixels; size policy 'exact' needs {size} x {size}")
    if policy == "no_upscale" and min(width, height) < size:
        raise DataError(
            f"image {name} is {width} x {height} pixels, smaller than the model's {size} x {size} (size policy 'no_upscale')"
        )
