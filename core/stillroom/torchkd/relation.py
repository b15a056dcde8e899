"""Relation-based distillation: RKD distance and angle (Park et al. 2019).

The student learns the *structure* of the teacher's embedding space rather than the
embeddings themselves (which may differ in dimension):

* distance: pairwise Euclidean distances of a batch, each divided by the mean distance over
  distinct pairs (scale invariance), compared by smooth L1 over the distinct pairs;
* angle: for every triplet (i, j, k), the cosine of the angle at j between the unit vectors
  to i and to k, compared by smooth L1 over all triplets (as in the authors' code, where
  degenerate triplets have a zero vector and cosine 0 on both sides).

``loss = distance_weight * distance + angle_weight * angle`` (the paper uses 25 and 50).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def normalized_distances(e: torch.Tensor) -> torch.Tensor:
    """Distances between distinct rows of ``e`` (flattened upper triangle) over their mean."""
    d = torch.cdist(e, e)
    i, j = torch.triu_indices(len(e), len(e), offset=1, device=e.device)
    pairs = d[i, j]
    return pairs / pairs.mean().clamp(min=1e-12)


def angles(e: torch.Tensor) -> torch.Tensor:
    """``cos`` of the angle at j between i and k, for every triplet, flattened."""
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # diff[j, i] = unit(e_i - e_j)
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


class RKDLoss(nn.Module):
    """``forward(student_embedding, teacher_embedding)`` on a batch of ``(n, d)`` embeddings."""

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0) -> None:
        super().__init__()
        self.distance_weight, self.angle_weight = float(distance_weight), float(angle_weight)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        student, teacher = student.flatten(1), teacher.flatten(1).detach()
        loss = student.new_zeros(())
        if len(student) < 3:
            return loss
        if self.distance_weight:
            loss = loss + self.distance_weight * F.smooth_l1_loss(normalized_distances(student), normalized_distances(teacher))
        if self.angle_weight:
            loss = loss + self.angle_weight * F.smooth_l1_loss(angles(student), angles(teacher))
        return loss
