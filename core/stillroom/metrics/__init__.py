"""Generic, model-agnostic metrics: bootstrap intervals, binary-probability metrics (fidelity,
calibration, operating points), the power of a non-inferiority verdict, score stability, and the review plots.

Plain numpy in, plain floats / dicts / frames out, so they can be logged without conversion.
This layer knows nothing of task types (:mod:`stillroom.tasks` builds on it), of the plugin
API or of MLflow.
"""

from __future__ import annotations

from .binary import (
    calibration,
    classification_summary,
    expected_calibration_error,
    fidelity,
    operating_point_at_fpr,
    reliability_curve,
    threshold_at_fpr,
    threshold_for_alert_rate,
)
from .bootstrap import (
    Interval,
    Metric,
    bootstrap_ci,
    bootstrap_difference,
    bootstrap_distribution,
    bootstrap_many,
    bootstrap_with_gain,
    percentile_interval,
    resample_indices,
    safe_metric,
)
from .power import NonInferiorityPower
from .ranked import CountsMetric, counts_metric
from .stability import histogram, psi, psi_from_counts, psi_from_histogram

__all__ = [
    "CountsMetric",
    "Interval",
    "Metric",
    "NonInferiorityPower",
    "bootstrap_ci",
    "bootstrap_difference",
    "bootstrap_distribution",
    "bootstrap_many",
    "bootstrap_with_gain",
    "calibration",
    "classification_summary",
    "counts_metric",
    "expected_calibration_error",
    "fidelity",
    "histogram",
    "operating_point_at_fpr",
    "percentile_interval",
    "psi",
    "psi_from_counts",
    "psi_from_histogram",
    "reliability_curve",
    "resample_indices",
    "safe_metric",
    "threshold_at_fpr",
    "threshold_for_alert_rate",
]
