"""The networks: a ResNet-style teacher and compact depthwise-separable students.

Both have the same shape of computation so every distillation family can pair them: a stem,
three stages (full, 1/2 and 1/4 resolution), global average pooling into an embedding, and a
linear head. ``forward`` returns logits (what is exported); ``forward_features`` also returns
each stage's feature map and the embedding (what hints, RKD and attention transfer need).

Outputs: two logits for a binary task (softmax; P(positive) is the second), ``k`` logits for
multiclass (softmax) and for multilabel (one sigmoid each).

Sizes at 28 x 28 grey, 2 outputs: the default teacher (widths 32/64/128, two residual
blocks per stage) has ~0.69M parameters; the default student (widths 16/32/64, one separable
block per stage) ~6k, under 1% of the teacher.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stillroom.contract import ConfigError
from stillroom.torchkd import ModelOutputs


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SeparableBlock(nn.Module):
    """Depthwise 3x3 (one filter per channel) then pointwise 1x1: ~1/9 of a full conv's weights."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.pointwise(F.relu(self.bn1(self.depthwise(x))))))


class StagedNet(nn.Module):
    """Stem -> three stages -> pooled embedding -> linear head."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], widths: list[int], n_outputs: int) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.stage_channels = list(widths)
        self.head = nn.Linear(widths[-1], n_outputs)

    def forward_features(self, x: torch.Tensor) -> ModelOutputs:
        out = self.stem(x)
        features = []
        for stage in self.stages:
            out = stage(out)
            features.append(out)
        embedding = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return ModelOutputs(self.head(embedding), features, embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        for stage in self.stages:
            out = stage(out)
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet(
    in_channels: int,
    n_outputs: int,
    widths: list[int] = (32, 64, 128),  # type: ignore[assignment]
    blocks: list[int] = (2, 2, 2),  # type: ignore[assignment]
    stem_stride: int = 1,
) -> StagedNet:
    """The ResNet-style teacher (He et al. 2016, CIFAR-style stem for small images)."""
    widths, blocks = _check(widths, blocks, "teacher")
    stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, stem_stride, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
    stages, cin = [], widths[0]
    for i, (w, b) in enumerate(zip(widths, blocks, strict=True)):
        layers = [BasicBlock(cin if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1) for j in range(b)]
        stages.append(nn.Sequential(*layers))
        cin = w
    return StagedNet(stem, stages, widths, n_outputs)


def separable(
    in_channels: int,
    n_outputs: int,
    widths: list[int] = (16, 32, 64),  # type: ignore[assignment]
    blocks: list[int] = (1, 1, 1),  # type: ignore[assignment]
    stem_stride: int = 1,
) -> StagedNet:
    """The compact student: a 3x3 stem, then depthwise-separable blocks (MobileNet, Howard et al. 2017).

    ``stem_stride=2`` (the default student's) halves the image in the stem, as MobileNet does:
    on CPU a small network's time goes to moving full-resolution feature maps, not to its few
    multiply-adds, so striding early is what makes it fast (see bench/results/efficiency-all-cores.md).
    """
    widths, blocks = _check(widths, blocks, "student")
    stem_width = max(8, widths[0] // 2)
    stem = nn.Sequential(nn.Conv2d(in_channels, stem_width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(stem_width), nn.ReLU())
    stages, cin = [], stem_width
    for i, (w, b) in enumerate(zip(widths, blocks, strict=True)):
        layers = [SeparableBlock(cin if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1) for j in range(b)]
        stages.append(nn.Sequential(*layers))
        cin = w
    return StagedNet(stem, stages, widths, n_outputs)


ARCHITECTURES = {"resnet": resnet, "separable": separable}


def build(architecture: str, in_channels: int, n_outputs: int, **params: Any) -> StagedNet:
    """A network by name with its widths/blocks; a wrong name or setting is a ConfigError."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {architecture!r} (known: {', '.join(ARCHITECTURES)})")
    try:
        return ARCHITECTURES[architecture](in_channels, n_outputs, **params)
    except TypeError as exc:
        raise ConfigError(f"invalid settings for architecture {architecture!r}: {exc}") from None


def n_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _check(widths: Any, blocks: Any, role: str) -> tuple[list[int], list[int]]:
    widths, blocks = [int(w) for w in widths], [int(b) for b in blocks]
    if len(widths) != 3 or len(blocks) != 3 or min(widths) < 1 or min(blocks) < 1:
        raise ConfigError(f"invalid config field '{role}.params': widths and blocks need three positive entries (one per stage)")
    return widths, blocks
