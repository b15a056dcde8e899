"""The molecules vertical's configuration: data source, split, pool and what the reviewer needs
to read the numbers (endpoint, units, applicability-domain settings, screening direction)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, model_validator

from stillroom.contract import DistillConfig, StrictModel


class MoleculesDataConfig(StrictModel):
    """``dataset``: ``molecules.solubility`` (embedded, default), ``molecules.freesolv``
    (embedded) or ``molecules.file`` (CSV / TSV / Parquet / SDF / SMILES file at ``path``)."""

    dataset: Literal["molecules.solubility", "molecules.freesolv", "molecules.file"] = "molecules.solubility"
    path: str | None = None
    smiles_column: str | None = Field(None, description="default: the first of smiles, canonical_smiles, smi ... (any case)")
    targets: list[str] | None = Field(None, description="target column(s) of molecules.file; several = multi-task")
    task_type: Literal["regression", "binary", "multilabel", "multiclass", "mixed"] | None = Field(
        None, description="default: inferred (0/1 targets -> binary/multilabel, none -> regression, some -> mixed)"
    )
    output_types: list[Literal["regression", "binary"]] | None = Field(
        None, description="mixed task: the kind of each target, in data.targets' order (default: inferred from the values)"
    )
    reference: Literal["labels", "teacher"] = Field(
        "labels",
        description=(
            "what the student is judged against: the target columns, or 'teacher' for molecules without labels "
            "(the teacher labels them all; its values / calls on held-out molecules are the reference; no baseline). "
            "With 'teacher', data.targets names the outputs, data.task_type is required and target columns are not read"
        ),
    )
    split: Literal["scaffold", "random"] = "scaffold"
    valid_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="ignored by molecules.solubility (its own test set)")
    max_rows: int | None = Field(None, gt=10, description="seeded subsample of the labelled rows (quick runs)")
    pool: Literal["nci5k", "file", "none"] = Field("nci5k", description="unlabelled transfer pool the teacher labels")
    pool_path: str | None = None
    pool_max: int | None = Field(5000, gt=0, description="seeded subsample of the pool")

    @model_validator(mode="after")
    def _paths(self) -> MoleculesDataConfig:
        if self.dataset == "molecules.file" and not self.path:
            raise ValueError("data.path is required for dataset 'molecules.file'")
        if self.dataset == "molecules.file" and not self.targets:
            raise ValueError("data.targets is required for dataset 'molecules.file'")
        if self.reference == "teacher" and self.dataset == "molecules.file":
            if self.task_type is None:
                raise ValueError("data.task_type is required with data.reference 'teacher' (no labels to infer it from)")
            if self.task_type == "mixed" and self.output_types is None:
                raise ValueError("data.output_types is required for a mixed task with data.reference 'teacher'")
        if self.output_types is not None and self.task_type not in (None, "mixed"):
            raise ValueError(f"data.output_types is for task type mixed, not {self.task_type}")
        if self.pool == "file" and not self.pool_path:
            raise ValueError("data.pool_path is required for pool 'file'")
        return self


class MoleculesSettings(StrictModel):
    """What the numbers mean and how the domain-specific metrics are computed."""

    endpoint: str = Field("unspecified", description="what is predicted, e.g. 'aqueous solubility logS'")
    units: str = Field("unspecified", description="units of the target, e.g. log10(mol/L)")
    ad_threshold: float = Field(0.4, gt=0, lt=1, description="max Tanimoto to training below this = outside the domain")
    enrichment_fraction: float = Field(
        0.01, gt=0, lt=1, description="top fraction screened (enrichment factor); 1% is always reported as well"
    )
    higher_is_better: bool = Field(True, description="regression: screen for high values (actives = top quantile)")
    active_quantile: float = Field(0.9, gt=0, lt=1, description="regression: values above this quantile are 'actives'")


AUTO_TEACHER = "molecules.auto"


def default_teacher() -> str:
    """What ``teacher.name: molecules.auto`` (the default) stands for: the Chemprop graph network
    when chemprop and Lightning are installed (``stillroom-molecules[gnn]``), else the descriptor
    ensemble. Resolved when the config is read, so the run logs the teacher it really used."""
    graph = all(importlib.util.find_spec(m) is not None for m in ("chemprop", "lightning"))
    return "molecules.chemprop" if graph else "molecules.descriptor_ensemble"


class MoleculesConfig(DistillConfig):
    task: Literal["molecules"] = "molecules"
    data: MoleculesDataConfig = Field(default_factory=MoleculesDataConfig)
    molecules: MoleculesSettings = Field(default_factory=MoleculesSettings)

    @model_validator(mode="after")
    def _resolve_teacher(self) -> MoleculesConfig:
        if self.teacher.name == AUTO_TEACHER:
            self.teacher.name = default_teacher()
        return self
