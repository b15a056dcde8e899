"""Generic metrics a vertical's evaluator may use (bootstrap intervals, binary-probability
metrics, score stability): :mod:`stillroom.metrics`, as part of the plugin API, with
:func:`metric_key` to name what an evaluator logs."""

from __future__ import annotations

from ..metrics import *  # noqa: F403 - the API is exactly stillroom.metrics' public names
from ..metrics import __all__ as _METRICS
from .names import metric_key

__all__ = [*_METRICS, "metric_key"]  # noqa: PLE0604
