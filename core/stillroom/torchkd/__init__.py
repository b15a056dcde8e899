"""Distillation losses in torch, shared by every torch-based vertical.

This subpackage imports torch; nothing else in the core imports it, so the core (and the fraud
vertical) install and run without torch. Install with ``pip install stillroom[torch]``.

One module per family of the distillation literature, each an ``nn.Module`` with a unit test
against a value computed by hand:

* :mod:`.response`: Hinton et al. 2015, KL on temperature-softened outputs, ``T^2``, blended
  with the hard-label loss;
* :mod:`.hints`: FitNets (Romero et al. 2015), an intermediate student feature map regressed
  through a learned adapter onto the teacher's;
* :mod:`.relation`: RKD (Park et al. 2019), distances and angles between samples' embeddings;
* :mod:`.attention`: attention transfer (Zagoruyko and Komodakis 2017), spatial attention maps;
* :mod:`.dkd`: decoupled KD (Zhao et al. 2022), target-class and non-target-class terms;
* :mod:`.generations`: born-again self-distillation (Furlanello et al. 2018), each generation
  taught by the previous one;
* :mod:`.objective`: the families selected in a config, weighted and summed.
"""

from __future__ import annotations

from .attention import AttentionTransferLoss, attention_map
from .dkd import DKDLoss
from .generations import born_again
from .hints import HintLoss
from .objective import FAMILIES, DistillationObjective, ModelOutputs
from .relation import RKDLoss
from .response import ResponseLoss

__all__ = [
    "FAMILIES",
    "AttentionTransferLoss",
    "DKDLoss",
    "DistillationObjective",
    "HintLoss",
    "ModelOutputs",
    "RKDLoss",
    "ResponseLoss",
    "attention_map",
    "born_again",
]
