"""DICOM files for tests, written with pydicom here (nothing downloaded): grey or RGB pixels, with
the header fields the medical reader uses (modality, rescale, window, sex, age, site, maker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    modality: str = "CR",
    photometric: str | None = None,
    header: dict[str, Any] | None = None,
    pixel_data: bool = True,
) -> Path:
    """``pixels``: ``(H, W)`` uint8/uint16 grey, ``(H, W, 3)`` uint8 RGB, or ``(frames, H, W)``
    with ``header={"NumberOfFrames": frames}``. ``header`` adds or overrides any element."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientSex, ds.PatientAge, ds.InstitutionName, ds.Manufacturer = "F", "045Y", "Site A", "Acme Imaging"
    if pixel_data:
        colour = pixels.ndim == 3 and pixels.shape[-1] == 3
        bits = 8 if pixels.dtype == np.uint8 else 16
        ds.set_pixel_data(pixels, photometric or ("RGB" if colour else "MONOCHROME2"), bits)
    for key, value in (header or {}).items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path
