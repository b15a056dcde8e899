"""The ``params`` of the teacher and student sections: network, training and distillation settings.

Validated with pydantic like the rest of the config, so that a typo in
``student.params.familes`` is one message naming the field, before any training starts.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationError

from stillroom.contract import ConfigError, DataBundle, StrictModel, has_class_labels, has_scalar_output
from stillroom.torchkd import FAMILIES

from . import nets
from .augment import AugmentSettings
from .images import stack
from .training import TrainSettings


class AugmentParams(StrictModel):
    flip: bool = True
    max_shift: int = Field(2, ge=0, le=8)
    intensity: float = Field(0.1, ge=0, le=0.5)
    noise: float = Field(0.02, ge=0, le=0.2)


class BornAgainParams(StrictModel):
    """Self-distillation: ``generations`` more students, each taught by the one before.

    ``start: teacher`` trains generation 0 from the teacher (the usual distilled student);
    ``start: labels`` trains it from the labels alone (born-again networks as in the paper:
    the student architecture teaches itself, no big teacher).
    """

    generations: int = Field(0, ge=0, le=5)
    start: Literal["teacher", "labels"] = "teacher"


class NetParams(StrictModel):
    architecture: Literal["resnet", "separable"]
    widths: list[int] = Field(default_factory=lambda: [16, 32, 64])
    blocks: list[int] = Field(default_factory=lambda: [1, 1, 1])
    stem_stride: int = Field(1, ge=1, le=4)  # 2: the stem halves the image, every later layer costs a quarter
    epochs: int = Field(20, ge=1, le=500)
    batch_size: int = Field(64, ge=2, le=4096)
    learning_rate: float = Field(3e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(4, ge=1)
    augment: bool | AugmentParams = False
    mixup_alpha: float = Field(0.0, ge=0, le=4)
    threads: int = Field(2, ge=1, le=64)
    progress: bool = True


class StudentParams(NetParams):
    architecture: Literal["resnet", "separable"] = "separable"
    families: dict[str, float] = Field(default_factory=lambda: {"response": 1.0})
    hint_stage: int = Field(1, ge=0, le=2)
    rkd_distance: float = Field(25.0, ge=0)
    rkd_angle: float = Field(50.0, ge=0)
    dkd_alpha: float = Field(1.0, ge=0)
    dkd_beta: float = Field(8.0, ge=0)
    born_again: BornAgainParams = Field(default_factory=BornAgainParams)


class TrainingParams:
    """Parsed params: the network to build and the training settings."""

    def __init__(self, parsed: NetParams, seed: int) -> None:
        self.parsed = parsed
        self.net = {
            "architecture": parsed.architecture,
            "widths": parsed.widths,
            "blocks": parsed.blocks,
            "stem_stride": parsed.stem_stride,
        }
        aug = parsed.augment
        augment = (
            AugmentSettings(**aug.model_dump())
            if isinstance(aug, AugmentParams)
            else (AugmentSettings() if aug else AugmentSettings(False, 0, 0.0, 0.0))
        )
        self.train = TrainSettings(
            epochs=parsed.epochs,
            batch_size=parsed.batch_size,
            learning_rate=parsed.learning_rate,
            weight_decay=parsed.weight_decay,
            patience=parsed.patience,
            augment=augment,
            mixup_alpha=parsed.mixup_alpha,
            threads=parsed.threads,
            seed=seed,
            progress=parsed.progress,
        )

    @classmethod
    def parse(cls, params: dict[str, Any], role: str, seed: int) -> TrainingParams:
        model = StudentParams if role == "student" else NetParams
        try:
            parsed = model.model_validate(params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            kind = "unknown" if first["type"] == "extra_forbidden" else "invalid"
            raise ConfigError(f"{kind} config field '{role}.params.{where}': {first['msg']}") from None
        if isinstance(parsed, StudentParams):
            unknown = sorted(set(parsed.families) - set(FAMILIES))
            if unknown:
                known = ", ".join(FAMILIES)
                raise ConfigError(
                    f"invalid config field 'student.params.families': unknown family {unknown[0]!r} (known: {known})"
                )
        nets._check(parsed.widths, parsed.blocks, role)
        return cls(parsed, seed)

    def build(self, in_channels: int, n_outputs: int) -> nets.StagedNet:
        net = {k: v for k, v in self.net.items() if k != "architecture"}
        return nets.build(self.net["architecture"], in_channels, n_outputs, **net)

    def identity(self) -> str:
        """Everything that changes the trained weights, as a stable string (cache key)."""
        return json.dumps(self.parsed.model_dump(exclude={"progress"}), sort_keys=True)

    def describe(self) -> dict[str, Any]:
        return {"architecture": self.net, "threads": self.train.threads, "seed": self.train.seed}


def output_count(bundle: DataBundle) -> int:
    """Logits a network needs: 2 for binary (a softmax over both classes), else one per output
    (k classes, or one per label)."""
    return 2 if has_scalar_output(bundle.task_type) else bundle.n_outputs


def tensors_for(bundle: DataBundle, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a split as tensors (labels: int64 class, or float per label)."""
    x = torch.from_numpy(stack(bundle.X(frame)))
    y = bundle.y(frame)
    return x, torch.from_numpy(np.asarray(y, dtype=np.int64 if has_class_labels(bundle.task_type) else np.float32))
