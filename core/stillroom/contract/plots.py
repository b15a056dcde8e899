"""The review plots a vertical may draw for its own evaluation (ROC/PR, reliability, fidelity
scatter, subgroup bars, score histograms): :mod:`stillroom.metrics.plots`, as part of the
plugin API. A separate module so that importing the API does not import matplotlib."""

from __future__ import annotations

from ..metrics.plots import fidelity_scatter, reliability_diagram, roc_pr_curves, score_histograms, subgroup_bars

__all__ = ["fidelity_scatter", "reliability_diagram", "roc_pr_curves", "score_histograms", "subgroup_bars"]
