"""Response-based distillation (Hinton, Vinyals and Dean 2015) for torch students.

    loss = a * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - a) * CE(y, softmax(z_s))

per row, averaged over the batch; ``a = alpha`` where the row has a label and ``a = 1`` where
it has none (the teacher alone speaks for unlabelled and synthetic points), as in
:mod:`stillroom.targets`. ``T^2`` keeps the soft term's gradient on the same scale for every
temperature. The teacher side may be logits or log-probabilities (softmax is invariant to an
added constant, so ``log p`` of cached probabilities works as logits).

Labels are class indices ``(n,)`` with ``-1`` for "no label", or class distributions
``(n, k)`` (mixup blends two one-hot labels). ``multilabel=True`` treats each output as an
independent sigmoid: binary KL per label and BCE per known label (NaN = missing), averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResponseLoss(nn.Module):
    """Hinton's blended soft/hard loss; ``forward(student_logits, teacher_logits, labels)``."""

    def __init__(self, temperature: float = 4.0, alpha: float = 0.7, multilabel: bool = False) -> None:
        super().__init__()
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError("ResponseLoss: temperature must be > 0 and alpha in [0, 1]")
        self.temperature, self.alpha, self.multilabel = float(temperature), float(alpha), multilabel

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return self._multilabel(student_logits, teacher_logits, labels)
        T = self.temperature
        labelled = labels.ge(0) if labels.dim() == 1 else torch.ones(len(labels), dtype=torch.bool, device=labels.device)
        hard = torch.zeros(len(labels), device=student_logits.device)
        if labelled.any():
            log_p = F.log_softmax(student_logits, dim=1)
            if labels.dim() == 1:
                hard = -log_p.gather(1, labels.clamp(min=0)[:, None])[:, 0]
            else:
                hard = -(labels * log_p).sum(dim=1)
            hard = torch.where(labelled, hard, torch.zeros_like(hard))
        if teacher_logits is None:
            return hard[labelled].mean() if labelled.any() else hard.sum()
        soft = T**2 * kl_rows(teacher_logits / T, student_logits / T)
        a = torch.where(labelled, torch.full_like(soft, self.alpha), torch.ones_like(soft))
        return (a * soft + (1 - a) * hard).mean()

    def _multilabel(self, s: torch.Tensor, t: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        known = ~torch.isnan(labels)
        y = torch.nan_to_num(labels, nan=0.0)
        bce = F.binary_cross_entropy_with_logits(s, y, reduction="none") * known
        hard = bce.sum() / known.sum().clamp(min=1)
        if t is None:
            return hard
        T = self.temperature
        p_t = torch.sigmoid(t / T)
        # binary KL(p_t || p_s) per label, computed from logits for stability
        soft = T**2 * (F.binary_cross_entropy_with_logits(s / T, p_t, reduction="none") - _binary_entropy(p_t))
        a = torch.where(known, torch.full_like(soft, self.alpha), torch.ones_like(soft))
        return (a * soft).mean() + ((1 - a) * bce).sum() / known.sum().clamp(min=1)


def kl_rows(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(teacher) || softmax(student))`` per row."""
    log_t = F.log_softmax(teacher_logits, dim=1)
    return (log_t.exp() * (log_t - F.log_softmax(student_logits, dim=1))).sum(dim=1)


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())
