"""torch's intra-op threads, capped for a block and given back.

Why here: only :mod:`stillroom.torchkd` imports torch, and the core's timing
(:mod:`stillroom.distillation.cores`) must cap torch's threads like every other pool while it
times models on one core, without importing torch when no model uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(threads: int) -> Iterator[dict[str, int]]:
    """``torch.set_num_threads(threads)`` inside the block, the previous count restored after
    (also when the block raises); yields ``{"before": n, "during": threads}``."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield {"before": before, "during": torch.get_num_threads()}
    finally:
        torch.set_num_threads(before)
