"""Feature-based distillation: FitNets hints (Romero et al. 2015).

The student's intermediate feature map (the "guided" layer) is mapped by a learned 1x1
convolution (the adapter, trained with the student) to the teacher's channel count and
regressed onto the teacher's feature map (the "hint") by mean squared error over every
element. If the spatial sizes differ the adapted map is average-pooled to the teacher's size.
The adapter exists only in training: it is not part of the exported student.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HintLoss(nn.Module):
    """``mean((adapter(f_s) - f_t)^2)``; the adapter's parameters train with the student."""

    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.adapter = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False)

    def forward(self, student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
        adapted = self.adapter(student_feature)
        if adapted.shape[-2:] != teacher_feature.shape[-2:]:
            height, width = teacher_feature.shape[-2:]
            adapted = F.adaptive_avg_pool2d(adapted, (int(height), int(width)))
        return F.mse_loss(adapted, teacher_feature.detach())
