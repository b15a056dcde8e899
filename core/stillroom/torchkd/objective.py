"""The distillation families a config selects, weighted and summed into one training loss.

``families`` maps a family name to its weight, e.g. ``{"response": 1, "hints": 0.5}``:

* ``response`` (:class:`.ResponseLoss`) carries the hard-label term as well; when it is not
  selected the student still learns the labels by plain cross-entropy, and every other
  family is added to that (as in the FitNets, RKD, AT and DKD papers);
* ``hints`` regresses the student's middle stage onto the teacher's through an adapter;
* ``relation`` compares embedding distances and angles within the batch (RKD);
* ``attention`` matches spatial attention maps at every stage;
* ``dkd`` adds decoupled KD (softmax outputs only).

Models hand their outputs over as :class:`ModelOutputs`: logits, the feature map of each
stage and the pooled embedding. Without a teacher (the baseline), only the labels count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import AttentionTransferLoss
from .dkd import DKDLoss
from .hints import HintLoss
from .relation import RKDLoss
from .response import ResponseLoss

FAMILIES = ("response", "hints", "relation", "attention", "dkd")


@dataclass
class ModelOutputs:
    """What a network returns in training: logits, per-stage feature maps, embedding."""

    logits: torch.Tensor
    features: list[torch.Tensor]
    embedding: torch.Tensor


class DistillationObjective(nn.Module):
    """``forward(student_out, teacher_out | None, labels) -> (loss, {family: value})``.

    Holds the learned parts of the losses (the hint adapter), so its parameters must be
    optimised together with the student's.
    """

    def __init__(
        self,
        families: dict[str, float],
        *,
        temperature: float = 4.0,
        alpha: float = 0.7,
        multilabel: bool = False,
        student_channels: list[int] | None = None,
        teacher_channels: list[int] | None = None,
        hint_stage: int = 1,
        rkd_distance: float = 25.0,
        rkd_angle: float = 50.0,
        dkd_alpha: float = 1.0,
        dkd_beta: float = 8.0,
    ) -> None:
        super().__init__()
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown distillation family {unknown[0]!r} (known: {', '.join(FAMILIES)})")
        if multilabel and "dkd" in families:
            raise ValueError("DKD decouples a softmax over classes; it does not apply to multilabel outputs")
        self.weights = {k: float(v) for k, v in families.items() if float(v) > 0}
        self.response = ResponseLoss(temperature, alpha if "response" in self.weights else 0.0, multilabel)
        self.hint_stage = hint_stage
        if "hints" in self.weights:
            if not student_channels or not teacher_channels:
                raise ValueError("the hints family needs the student's and the teacher's stage channel counts")
            self.hints = HintLoss(student_channels[hint_stage], teacher_channels[hint_stage])
        self.relation = RKDLoss(rkd_distance, rkd_angle)
        self.attention = AttentionTransferLoss()
        self.dkd = DKDLoss(dkd_alpha, dkd_beta, temperature)

    @property
    def needs_teacher_features(self) -> bool:
        """Whether a family needs the teacher's intermediate features (not just its outputs)."""
        return bool({"hints", "relation", "attention"} & set(self.weights))

    def forward(
        self, student: ModelOutputs, teacher: ModelOutputs | None, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if teacher is None:
            loss = self.response(student.logits, None, labels)
            return loss, {"hard": float(loss.detach())}
        t_logits = teacher.logits.detach()
        parts = {"response": self.weights.get("response", 1.0) * self.response(student.logits, t_logits, labels)}
        if "hints" in self.weights:
            s_f, t_f = student.features[self.hint_stage], teacher.features[self.hint_stage]
            parts["hints"] = self.weights["hints"] * self.hints(s_f, t_f)
        if "relation" in self.weights:
            parts["relation"] = self.weights["relation"] * self.relation(student.embedding, teacher.embedding)
        if "attention" in self.weights:
            parts["attention"] = self.weights["attention"] * self.attention(student.features, teacher.features)
        if "dkd" in self.weights:
            parts["dkd"] = self.weights["dkd"] * self.dkd(student.logits, t_logits, labels)
        loss = torch.stack(list(parts.values())).sum()
        return loss, {k: float(v.detach()) for k, v in parts.items()}
