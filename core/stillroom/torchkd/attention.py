"""Attention transfer (Zagoruyko and Komodakis 2017).

A feature map ``(n, c, h, w)`` becomes a spatial attention map: the channel mean of the
squared activations, flattened and L2-normalised per image. The student matches the
teacher's maps at each paired stage by the mean squared difference (the paper's
``beta / 2 * || a_s - a_t ||_2`` with the norm taken as a mean, weight set in the config). If
the spatial sizes differ the student's map is average-pooled to the teacher's size first.
Channel counts may differ: the map sums them away, so no adapter is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention_map(feature: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``normalize(mean_c(F^2))`` flattened to ``(n, h*w)``, pooled to ``size`` if given."""
    a = feature.pow(2).mean(dim=1, keepdim=True)
    if size is not None and a.shape[-2:] != size:
        a = F.adaptive_avg_pool2d(a, size)
    return F.normalize(a.flatten(1), p=2, dim=1)


class AttentionTransferLoss(nn.Module):
    """``forward([f_s per stage], [f_t per stage])``: mean over stages of ``mean((a_s - a_t)^2)``."""

    def forward(self, student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
        if len(student) != len(teacher) or not student:
            raise ValueError(f"attention transfer pairs stages: student has {len(student)}, teacher {len(teacher)}")
        terms = [
            (attention_map(s, (int(t.shape[-2]), int(t.shape[-1]))) - attention_map(t.detach())).pow(2).mean()
            for s, t in zip(student, teacher, strict=True)
        ]
        return torch.stack(terms).mean()
