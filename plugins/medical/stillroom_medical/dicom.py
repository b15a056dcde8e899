"""DICOM images read with pydicom, turned into the values a reader sees on a viewing station.

A DICOM file stores raw detector or scanner values; what a radiologist looks at is those values
after the modality LUT (rescale slope and intercept: Hounsfield units for CT) and a window
(the VOI transform: which range of values spans black to white). A model must see the same
mapping at training and at scoring, so it is configured once (``data.dicom``), shipped with the
model and applied here in both:

* ``window: file`` (default): the file's VOI LUT Sequence, else its first Window Center/Width
  (with its VOI LUT Function: LINEAR, LINEAR_EXACT or SIGMOID), else the image's own min-max;
* ``window: minmax``: the image's own min-max, whatever the file says;
* ``window: {center, width}``: a fixed window (e.g. a CT lung window), the same for every file.

MONOCHROME1 (white is low) is inverted so that bright means dense in every image; RGB (and
YBR, which pydicom converts to RGB) is scaled by its bit depth. Sex, age group, site
(institution) and manufacturer come from the header, for subgroup analysis.

One image per file: a multi-frame file, a file without pixel data, a modality the model was
not trained on, or pixel data pydicom cannot decode is one :class:`DataError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stillroom.contract import DataError

SUFFIXES = (".dcm", ".dicom")
MAGIC_OFFSET = 128
METADATA = ("sex", "age_group", "site", "manufacturer")
AGE_GROUPS = ((18, "0-17"), (40, "18-39"), (60, "40-59"), (80, "60-79"), (float("inf"), "80+"))
UNKNOWN = "unknown"
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
AGE_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 1 / 52, "D": 1 / 365}


@dataclass(frozen=True)
class DicomSettings:
    """How DICOM pixel values become image values: the window, and the modalities accepted."""

    window: str | tuple[float, float] = "file"  # "file", "minmax" or (center, width)
    modalities: tuple[str, ...] | None = None  # None: any

    def as_dict(self) -> dict[str, Any]:
        return {"window": list(self.window) if isinstance(self.window, tuple) else self.window, "modalities": self.modalities}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DicomSettings:
        window = raw.get("window", "file")
        modalities = raw.get("modalities")
        return cls(tuple(window) if isinstance(window, list) else window, tuple(modalities) if modalities else None)


def is_dicom(path: Path) -> bool:
    """A ``.dcm``/``.dicom`` file, or any file with the DICOM preamble's ``DICM`` marker (exports
    often have no suffix at all)."""
    if path.suffix.lower() in SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(MAGIC_OFFSET + 4)
    except OSError:
        return False
    return head[MAGIC_OFFSET:] == b"DICM"


def read_dicom(path: Path, settings: DicomSettings, name: str | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """One single-frame DICOM image as float32 ``(H, W)`` (grey) or ``(H, W, 3)`` (colour) in
    [0, 1], and its header metadata (:func:`header_metadata`)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    name = name or str(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise DataError(f"DICOM file {name} is not readable: {exc}") from None
    if "PixelData" not in ds:
        kind = getattr(ds.get("SOPClassUID"), "name", None) or "no image"
        raise DataError(f"DICOM file {name} has no pixel data ({kind})")
    modality = str(ds.get("Modality", "") or "")
    if settings.modalities and modality not in settings.modalities:
        raise DataError(
            f"DICOM file {name}: modality {modality or '(not set)'}, but this model takes {', '.join(settings.modalities)}"
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(
            f"DICOM file {name} holds {frames} frames; one image per file is expected (split multi-frame files first)"
        )
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # a decoder pydicom lacks here (JPEG 2000 ...), or a truncated file
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        what = getattr(syntax, "name", "unknown transfer syntax")
        raise DataError(f"DICOM file {name}: pixel data ({what}) cannot be decoded here: {exc}") from None
    return _values(pixels, ds, settings, name), header_metadata(ds)


def _values(pixels: np.ndarray, ds: Any, settings: DicomSettings, name: str) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric in MONOCHROME:
        from pydicom.pixels import apply_modality_lut

        values = _window(np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64), ds, settings.window)
        return (1.0 - values if photometric == "MONOCHROME1" else values).astype(np.float32)
    if photometric in COLOUR:  # pydicom hands YBR over as RGB
        bits = int(ds.get("BitsStored", 8) or 8)
        return (np.asarray(pixels, dtype=np.float64) / (2**bits - 1)).clip(0, 1).astype(np.float32)
    raise DataError(f"DICOM file {name}: photometric interpretation {photometric or '(not set)'} is not supported (grey or RGB)")


def _window(values: np.ndarray, ds: Any, window: str | tuple[float, float]) -> np.ndarray:
    """The VOI transform to [0, 1] (DICOM PS3.3 C.11.2.1.2), from the file or the config."""
    if isinstance(window, tuple):
        return apply_window(values, *window)
    if window == "file" and "VOILUTSequence" in ds:
        from pydicom.pixels import apply_voi

        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return np.asarray(apply_voi(values, ds), dtype=np.float64) / (2**bits - 1)
    if window == "file" and "WindowCenter" in ds and "WindowWidth" in ds:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
        return apply_window(values, _first(ds.WindowCenter), _first(ds.WindowWidth), function)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Window ``center``/``width`` mapped to [0, 1] with DICOM's LINEAR (default), LINEAR_EXACT
    or SIGMOID VOI LUT function."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if width <= 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _first(value: Any) -> float:
    """A multi-valued Window Center/Width gives several views; the first is the default one."""
    from pydicom.multival import MultiValue

    return float(value[0]) if isinstance(value, MultiValue) else float(value)


def header_metadata(ds: Any) -> dict[str, str]:
    """Subgroup columns from the header (:data:`METADATA`: sex, age group, site (institution),
    manufacturer) and the modality."""
    return {
        "modality": str(ds.get("Modality", "") or "").strip() or UNKNOWN,
        "sex": str(ds.get("PatientSex", "") or "").strip() or UNKNOWN,
        "age_group": age_group(str(ds.get("PatientAge", "") or "")),
        "site": str(ds.get("InstitutionName", "") or "").strip() or UNKNOWN,
        "manufacturer": str(ds.get("Manufacturer", "") or "").strip() or UNKNOWN,
    }


def age_group(age: str) -> str:
    """DICOM Patient's Age (``045Y``, ``006M``, ``002W``, ``010D``) -> an age group."""
    age = age.strip().upper()
    if len(age) < 2 or age[-1] not in AGE_UNITS or not age[:-1].isdigit():
        return UNKNOWN
    years = int(age[:-1]) * AGE_UNITS[age[-1]]
    return next(label for bound, label in AGE_GROUPS if years < bound)
