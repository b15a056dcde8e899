"""Decoupled knowledge distillation (Zhao et al. 2022).

The classical KD term splits into a target-class part (TCKD: the binary distribution
"target class vs all others") and a non-target part (NCKD: the distribution among the
non-target classes), which DKD weights independently:

    DKD = alpha * T^2 * KL(b_t || b_s) + beta * T^2 * KL(p~_t || p~_s)

with ``b = [p_target, 1 - p_target]`` of ``softmax(z / T)`` and ``p~`` the softmax of the
non-target logits alone (the target logit masked out). Rows without a label use the
teacher's top class as the target. With two classes NCKD is zero (one non-target class).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MASK = 1000.0  # subtracted from the target logit: softmax then gives it ~0 mass


class DKDLoss(nn.Module):
    """``forward(student_logits, teacher_logits, labels)``; labels ``(n,)`` with -1 = none, or ``(n, k)``."""

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0) -> None:
        super().__init__()
        self.alpha, self.beta, self.temperature = float(alpha), float(beta), float(temperature)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        T = self.temperature
        target = labels.argmax(dim=1) if labels.dim() == 2 else labels.clone()
        target = torch.where(target >= 0, target, teacher_logits.argmax(dim=1))
        gt = F.one_hot(target, student_logits.shape[1]).bool()
        p_s, p_t = F.softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1)
        b_s = torch.stack([p_s[gt], 1 - p_s[gt]], dim=1).clamp(min=1e-12)
        b_t = torch.stack([p_t[gt], 1 - p_t[gt]], dim=1).clamp(min=1e-12)
        tckd = (b_t * (b_t.log() - b_s.log())).sum(dim=1).mean() * T**2
        log_ns = F.log_softmax(student_logits / T - MASK * gt, dim=1)
        log_nt = F.log_softmax(teacher_logits / T - MASK * gt, dim=1)
        nckd = (log_nt.exp() * (log_nt - log_ns)).masked_fill(gt, 0).sum(dim=1).mean() * T**2
        return self.alpha * tckd + self.beta * nckd
