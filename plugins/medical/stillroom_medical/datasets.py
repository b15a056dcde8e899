"""Dataset hooks of the medical vertical: the config's ``data`` section -> a DataBundle."""

from __future__ import annotations

from stillroom.contract import DataBundle

from . import loaders, synthetic
from .config import MedicalDataConfig, WindowConfig
from .dicom import DicomSettings
from .images import to_bundle


def load_synthetic(cfg: MedicalDataConfig, seed: int) -> DataBundle:
    """The embedded default: seeded synthetic tissue images with lesions and metadata."""
    s = cfg.synthetic
    data = synthetic.synthetic_data(s.n_train, s.n_validation, s.n_test, s.size, s.channels, s.task_type, seed, s.difficulty)
    bundle = to_bundle(data)
    bundle.caveats.append("The embedded default data is synthetic and says nothing about clinical performance.")
    return bundle


def load_npz_file(cfg: MedicalDataConfig, seed: int) -> DataBundle:
    """A MedMNIST-layout ``.npz`` archive, with subgroup columns from ``data.metadata_csv``."""
    return to_bundle(loaders.load_npz(str(cfg.path), cfg.task_type, cfg.class_names, cfg.metadata_csv))


def load_image_folder(cfg: MedicalDataConfig, seed: int) -> DataBundle:
    """A folder of PNG, JPEG or DICOM images with a labels CSV (optional split and metadata columns)."""
    return to_bundle(
        loaders.load_folder(
            str(cfg.path),
            labels_csv=cfg.labels_csv,
            image_column=cfg.image_column,
            label_columns=cfg.label_columns,
            split_column=cfg.split_column,
            metadata=cfg.metadata,
            size=cfg.size,
            channels=cfg.channels,
            size_policy=cfg.size_policy,
            dicom=dicom_settings(cfg),
            task_type=cfg.task_type,
            class_names=cfg.class_names,
            valid_fraction=cfg.valid_fraction,
            test_fraction=cfg.test_fraction,
            seed=seed,
        )
    )


def dicom_settings(cfg: MedicalDataConfig) -> DicomSettings:
    """The ``data.dicom`` section as the settings the DICOM reader applies."""
    window = cfg.dicom.window
    fixed = (window.center, window.width) if isinstance(window, WindowConfig) else window
    return DicomSettings(fixed, tuple(cfg.dicom.modalities) if cfg.dicom.modalities else None)
