"""Score stability between training and scoring: population stability index and histograms.

A scoring job cannot keep the training scores beside the model, so a fixed-edge histogram is
stored at training time and every scoring job's scores are compared against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def psi(expected: Any, actual: Any, n_bins: int = 10, eps: float = 1e-6) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Bins are quantiles of ``expected`` (so each holds about ``1/n_bins`` of it); duplicate
    edges from ties are merged, so a spike of identical scores is one bin, not several
    empty ones. Rule of thumb: < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted.
    """
    e = np.asarray(expected, dtype=float)
    inner = np.unique(np.quantile(e, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    n_cells = len(inner) + 1
    e_counts = np.bincount(np.searchsorted(inner, e, side="right"), minlength=n_cells)
    a_counts = np.bincount(np.searchsorted(inner, np.asarray(actual, dtype=float), side="right"), minlength=n_cells)
    return psi_from_counts(e_counts, a_counts, eps)


def psi_from_counts(expected_counts: Any, actual_counts: Any, eps: float = 1e-6) -> float:
    """PSI between two binnings of the same edges: ``sum((a - e) * ln(a / e))`` over shares.

    Shares are floored at ``eps`` so an empty bin contributes a large but finite term.
    """
    e = _shares(expected_counts, eps)
    a = _shares(actual_counts, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: Any, eps: float) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    return np.maximum(c / max(c.sum(), 1.0), eps)


def histogram(p: Any, n_bins: int = 20, range: tuple[float, float] = (0.0, 1.0)) -> dict[str, list[float]]:  # noqa: A002
    """A JSON-ready fixed-edge histogram of scores, stored at training time as the reference.

    Scores outside ``range`` are clipped into the end bins so no row is silently dropped.
    Scoring jobs later call :func:`psi_from_histogram` with it: no raw training scores
    need to be kept next to the model.
    """
    edges = np.linspace(range[0], range[1], n_bins + 1)
    return {"edges": edges.tolist(), "counts": _bin_counts(p, edges).tolist()}


def psi_from_histogram(reference_counts: Any, edges: Any, actual: Any, eps: float = 1e-6) -> float:
    """PSI of ``actual`` scores against a stored reference :func:`histogram`."""
    return psi_from_counts(reference_counts, _bin_counts(actual, np.asarray(edges, dtype=float)), eps)


def _bin_counts(values: Any, edges: np.ndarray) -> np.ndarray:
    """Counts per ``[edge_i, edge_i+1)`` bin, the last closed, out-of-range values clipped in."""
    v = np.clip(np.asarray(values, dtype=float), edges[0], edges[-1])
    return np.histogram(v, bins=edges)[0]
