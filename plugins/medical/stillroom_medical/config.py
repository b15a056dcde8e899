"""The medical vertical's configuration: where the images come from and how it is judged."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stillroom.contract import DataSettings, DistillConfig, StrictModel


class SyntheticConfig(StrictModel):
    """Sizes of the embedded synthetic image generator (see ``stillroom_medical.synthetic``)."""

    n_train: int = Field(1000, ge=20)
    n_validation: int = Field(300, ge=20)
    n_test: int = Field(500, ge=20)
    size: int = Field(28, ge=8, le=256)
    channels: Literal[1, 3] = 1
    task_type: Literal["binary", "multiclass", "multilabel"] = "binary"
    difficulty: float = Field(1.0, gt=0)


class WindowConfig(StrictModel):
    """A fixed DICOM window (VOI): values from ``center - width/2`` to ``center + width/2`` span black to white."""

    center: float
    width: float = Field(gt=0)


class DicomConfig(StrictModel):
    """How DICOM files become images (see ``stillroom_medical.dicom``); shipped with the model."""

    window: Literal["file", "minmax"] | WindowConfig = Field(
        "file", description="file: the file's VOI LUT / window, else min-max; minmax; or {center, width}"
    )
    modalities: list[str] | None = Field(
        None, description="accepted modalities (e.g. [CR, DX]); default: any at training, those seen in training at scoring"
    )


class MedicalDataConfig(DataSettings):
    """``dataset``: ``medical.synthetic`` (embedded), ``medical.npz`` (MedMNIST layout) or
    ``medical.folder`` (PNG, JPEG or DICOM files with a labels CSV)."""

    dataset: Literal["medical.synthetic", "medical.npz", "medical.folder"] = "medical.synthetic"
    path: str | None = None
    task_type: Literal["binary", "multiclass", "multilabel"] | None = Field(None, description="default: inferred from the labels")
    class_names: list[str] | None = None
    labels_csv: str | None = Field(None, description="folder: default <path>/labels.csv")
    image_column: str = "image"
    label_columns: list[str] | None = Field(None, description="folder: default ['label']; several = multilabel")
    split_column: str = "split"
    metadata: list[str] | None = Field(None, description="folder: subgroup columns; default every other CSV column")
    size: int | None = Field(None, ge=8, le=512, description="folder: resize to size x size")
    channels: Literal[1, 3] = 1
    size_policy: Literal["resize", "no_upscale", "exact"] = Field(
        "resize", description="image files of another size: resize them, refuse smaller ones, or refuse any"
    )
    dicom: DicomConfig = Field(default_factory=DicomConfig)
    metadata_csv: str | None = Field(None, description="npz: subgroup columns per image, keyed by split and index")
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    @model_validator(mode="after")
    def _path_for_files(self) -> MedicalDataConfig:
        if self.dataset != "medical.synthetic" and not self.path:
            raise ValueError(f"data.path is required for dataset {self.dataset!r}")
        return self


class MedicalOperatingPoint(StrictModel):
    """Chosen on validation, then fixed: e.g. the threshold reaching 90% sensitivity."""

    kind: Literal["sensitivity", "specificity", "youden", "threshold"] = "sensitivity"
    value: float = Field(0.9, gt=0, lt=1)


class MedicalMetricsConfig(StrictModel):
    operating_point: MedicalOperatingPoint = Field(default_factory=MedicalOperatingPoint)
    calibration_bins: int = Field(10, ge=2, le=100)
    min_subgroup_size: int = Field(30, ge=1, description="smaller subgroups are reported but flagged, not ranked")


class MedicalConfig(DistillConfig):
    task: Literal["medical"] = "medical"
    data: MedicalDataConfig = Field(default_factory=MedicalDataConfig)
    medical: MedicalMetricsConfig = Field(default_factory=MedicalMetricsConfig)
