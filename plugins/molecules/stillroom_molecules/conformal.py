"""Split-conformal uncertainty for the students: intervals for values, prediction sets for yes/no.

A student's score alone does not say how far to trust it. Split conformal prediction (Vovk et
al. 2005; Lei et al. 2018) turns any fitted model into one that does, with a guarantee that needs
no assumption on the model: on molecules exchangeable with a held-out *calibration* split, the
interval (or set) holds the true value with probability at least the configured level.

* a value output: nonconformity ``|y - f(x)|``; the interval is ``f(x) +- q`` where ``q`` is the
  ``ceil((n + 1) level) / n`` empirical quantile of the calibration scores;
* a probability output (binary, one multilabel column): nonconformity ``1 - p(true class)``
  (the "LAC" score, Sadinle et al. 2019); the set holds every class whose score is ``<= q``:
  ``{1}``, ``{0}``, ``{0,1}`` (too uncertain to call) or ``{}`` (unlike anything calibrated);
* a multiclass task: the same score on the class probabilities, one set of class indices.

The calibration quantiles are a handful of numbers per output; they are saved in the student's
``student.json``, so the registered model carries them and ``stillroom score`` writes the
``lower``/``upper`` (or ``set``) columns beside the score. The guarantee is marginal: over
molecules like the calibration split. The evaluator therefore reports coverage and width on
test inside and outside the applicability domain as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_LEVEL = 0.9
DEFAULT_CALIBRATION_FRACTION = 0.5
MIN_CALIBRATION = 10  # below this the quantile is the largest score or infinite: say so, do not pretend


@dataclass(frozen=True)
class ConformalSettings:
    """``student.params.conformal``: ``level`` (0.9), ``calibration_fraction`` (0.5 of the
    validation molecules, drawn seeded; the rest is for early stopping and the student choice),
    ``enabled`` (true)."""

    level: float = DEFAULT_LEVEL
    calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION
    enabled: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> ConformalSettings:
        from stillroom.contract import ConfigError

        params = dict(params or {})
        unknown = sorted(set(params) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"unknown config field 'student.params.conformal.{unknown[0]}' (known: {sorted(cls.__dataclass_fields__)})"
            )
        out = cls(**params)
        if not 0.5 <= out.level < 1:
            raise ConfigError(f"student.params.conformal.level must be in [0.5, 1), got {out.level}")
        if not 0.05 <= out.calibration_fraction <= 0.95:
            raise ConfigError(
                f"student.params.conformal.calibration_fraction must be in [0.05, 0.95], got {out.calibration_fraction}"
            )
        return out


def calibration_rows(n: int, settings: ConformalSettings, seed: int) -> np.ndarray:
    """A seeded boolean mask over ``n`` validation rows: True = calibration, False = the rest
    (early stopping, the student choice). Both sides keep at least one row."""
    mask = np.zeros(n, dtype=bool)
    if not settings.enabled or n < 2:
        return mask
    k = min(n - 1, max(1, int(round(settings.calibration_fraction * n))))
    mask[np.random.default_rng(seed + 7).choice(n, k, replace=False)] = True
    return mask


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ``ceil((n + 1) level)``-th smallest score, or
    infinity when ``n`` is too small for that rank to exist (then no finite interval covers)."""
    scores = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    n = len(scores)
    rank = math.ceil((n + 1) * level)
    return float(scores[rank - 1]) if 0 < rank <= n else math.inf


def shippable_quantile(kind: str, scores: np.ndarray, level: float) -> tuple[float, bool]:
    """(the quantile a model ships, whether it carries the guarantee). A scoring job refuses
    non-finite outputs, so too few calibration molecules for the level give the largest score
    seen (a narrower interval than the level asks, flagged ``guaranteed: false``), and none at
    all the widest finite answer: every class (a probability output), or no bound (a value)."""
    q = conformal_quantile(scores, level)
    if np.isfinite(q):
        return q, True
    finite = np.asarray(scores, dtype=float)[np.isfinite(scores)]
    if len(finite):
        return float(finite.max()), False
    return (1.0, False) if kind != "regression" else (float(np.finfo(np.float64).max) / 4, False)


def nonconformity(kind: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per calibration row: ``|y - p|`` for a value, ``1 - p(true class)`` for a probability
    output (``p`` = P(1)) or a multiclass one (``p`` (n, k), ``y`` class indices)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if kind == "regression":
        return np.abs(y - p)
    if kind == "multiclass":
        ok = np.isfinite(y) & (y >= 0)
        out = np.full(len(y), np.nan)
        out[ok] = 1 - p[np.flatnonzero(ok), y[ok].astype(int)]
        return out
    return np.where(y == 1, 1 - p, p)  # callers pass labelled rows only


def calibrate(kinds: tuple[str, ...], y: np.ndarray, p: np.ndarray, level: float) -> dict[str, Any]:
    """The quantile of every output from calibration rows (``y`` (n, k) NaN = missing, ``p`` the
    student's outputs); what the scorer saves and applies."""
    if kinds and kinds[0] == "multiclass":
        scores = nonconformity("multiclass", np.asarray(y, dtype=float).ravel(), p)
        scores = scores[np.isfinite(scores)]
        q, guaranteed = shippable_quantile("multiclass", scores, level)
        return {"level": level, "quantiles": [q], "n_calibration": [int(len(scores))], "guaranteed": [guaranteed]}
    y, p = np.atleast_2d(np.asarray(y, dtype=float).T).T, np.atleast_2d(np.asarray(p, dtype=float).T).T
    quantiles, counts, guarantees = [], [], []
    for j, kind in enumerate(kinds):
        ok = np.isfinite(y[:, j]) & np.isfinite(p[:, j])
        q, guaranteed = shippable_quantile(kind, nonconformity(kind, y[ok, j], p[ok, j]), level)
        quantiles.append(q)
        counts.append(int(ok.sum()))
        guarantees.append(guaranteed)
    return {"level": level, "quantiles": quantiles, "n_calibration": counts, "guaranteed": guarantees}


def intervals(p: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of a value output."""
    return p - q, p + q


def binary_sets(p: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """(holds 0, holds 1) of a probability output: class k is in when its score ``<= q``."""
    return (p <= q), (1 - p <= q)


def multiclass_sets(p: np.ndarray, q: float) -> np.ndarray:
    """(n, k) membership of each class."""
    return (1 - np.asarray(p, dtype=float)) <= q


def set_text(members: np.ndarray) -> str:
    """A prediction set as the scoring output writes it: ``{0,1}``, ``{1}``, ``{}``."""
    return "{" + ",".join(str(k) for k in np.flatnonzero(members)) + "}"


def binary_set_texts(p: np.ndarray, q: float) -> list[str]:
    zero, one = binary_sets(p, q)
    return [set_text(np.array([a, b])) for a, b in zip(zero, one, strict=True)]


def coverage_and_width(kind: str, y: np.ndarray, p: np.ndarray, q: float) -> dict[str, float]:
    """On held-out rows with labels: the share covered and the mean width (interval length, or
    the mean set size); also, for a probability output, the share of sets with exactly one class
    (the molecules the student calls at the configured confidence)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    ok = np.isfinite(y) if kind == "multiclass" or y.ndim == 1 else np.isfinite(y).all(axis=1)
    ok &= np.isfinite(p) if p.ndim == 1 else np.isfinite(p).all(axis=1)
    if not ok.any():
        return {}
    y, p = y[ok], p[ok]
    if kind == "regression":
        lower, upper = intervals(p, q)
        return {"coverage": float(np.mean((y >= lower) & (y <= upper))), "width": float(2 * q), "n": float(len(y))}
    if kind == "multiclass":
        members = multiclass_sets(p, q)
        covered = members[np.arange(len(y)), y.astype(int)]
    else:
        zero, one = binary_sets(p, q)
        members = np.column_stack([zero, one])
        covered = np.where(y == 1, one, zero)
    sizes = members.sum(axis=1)
    return {
        "coverage": float(covered.mean()),
        "width": float(sizes.mean()),
        "singleton": float(np.mean(sizes == 1)),
        "n": float(len(y)),
    }
