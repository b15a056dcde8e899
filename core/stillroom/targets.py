"""Soft targets for response-based distillation (Hinton, Vinyals and Dean 2015).

For a binary teacher probability ``p`` the tempered target is ``sigmoid(logit(p) / T)``;
``T > 1`` spreads the teacher's confidence so the student sees how close a case was to the
boundary, not only which side it fell on. Labelled rows blend that with the hard label,
``alpha * soft + (1 - alpha) * y``; rows without a label (pool, synthetic) take the soft
target alone. LightGBM's ``cross_entropy`` objective and a torch BCE both accept such
targets in [0, 1], so the loss is the cross-entropy to the blended distribution.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def soften(p: np.ndarray, temperature: float) -> np.ndarray:
    """Teacher probabilities softened by temperature in logit space."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    if temperature == 1.0:
        return p
    logits = np.log(p) - np.log1p(-p)
    return 1.0 / (1.0 + np.exp(-logits / temperature))


def blend(soft: np.ndarray, hard: np.ndarray | None, alpha: float) -> np.ndarray:
    """``alpha * soft + (1 - alpha) * hard`` where a label exists (``hard`` not NaN)."""
    if hard is None:
        return soft
    hard = np.asarray(hard, dtype=float)
    labelled = ~np.isnan(hard)
    out = soft.copy()
    out[labelled] = alpha * soft[labelled] + (1 - alpha) * hard[labelled]
    return out


def distillation_targets(
    teacher_p: np.ndarray, hard: np.ndarray | None, temperature: float, alpha: float
) -> np.ndarray:
    """Targets a student fits: tempered teacher probabilities blended with labels."""
    return blend(soften(teacher_p, temperature), hard, alpha)
