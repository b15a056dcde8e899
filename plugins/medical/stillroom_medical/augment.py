"""Augmentation and mixup of training batches (torch, on the batch, seeded by a Generator).

Why on the fly: a small labelled set (a few thousand scans) is all a hospital group has;
random flips, shifts, intensity changes and noise multiply what the student sees, and mixup
(Zhang et al. 2018) trains it on convex blends of two images, whose teacher outputs are
exactly the "dark knowledge" between classes that distillation transfers. With augmentation
the teacher must score each augmented batch (its cached outputs are for the raw images).

Operations stay anatomically plausible for screening images: horizontal flips (left/right
symmetry), shifts of a few pixels, and contrast/brightness/noise within scanner variation;
no rotations by large angles, no vertical flips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSettings:
    flip: bool = True
    max_shift: int = 2
    intensity: float = 0.1
    noise: float = 0.02

    @property
    def enabled(self) -> bool:
        return self.flip or self.max_shift > 0 or self.intensity > 0 or self.noise > 0


def augment(x: torch.Tensor, settings: AugmentSettings, g: torch.Generator) -> torch.Tensor:
    """A randomly transformed copy of the batch ``x`` (n, C, H, W) in [0, 1]."""
    n = len(x)
    out = x
    if settings.flip:
        flip = torch.rand(n, generator=g) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    if settings.max_shift > 0:
        s = settings.max_shift
        padded = F.pad(out, (s, s, s, s), mode="replicate")
        dy, dx = (torch.randint(0, 2 * s + 1, (n,), generator=g) for _ in range(2))
        h, w = out.shape[-2:]
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, out.shape[1], h, w + 2 * s)
        cropped = padded.gather(2, rows)
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, out.shape[1], h, w)
        out = cropped.gather(3, cols)
    if settings.intensity > 0:
        gain = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * settings.intensity
        shift = (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * settings.intensity / 2
        out = out * gain + shift
    if settings.noise > 0:
        out = out + torch.randn(out.shape, generator=g) * settings.noise
    return out.clamp(0, 1)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend each image with a random partner: ``lam * x + (1 - lam) * x[perm]``, labels alike.

    ``y`` are label distributions (n, k) (one-hot or multilabel 0/1); ``lam ~ Beta(alpha, alpha)``
    per image. Missing multilabel entries (NaN) stay missing wherever either partner lacks them.
    """
    n = len(x)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, n)).float() if alpha > 0 else torch.ones(n)
    lam = torch.maximum(lam, 1 - lam)  # the first image dominates: its label stays the majority
    perm = torch.randperm(n, generator=g)
    mixed_x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
    mixed_y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
    return mixed_x, mixed_y
