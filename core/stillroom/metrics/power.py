"""What a non-inferiority verdict can say at this sample size, read from the gain's interval.

Why: ``noninferior(metric)`` passes when the lower bound of the paired interval of the gain
(student - baseline) is at least ``-margin``. On a test split with few events that interval is
wider than the margin, and the rule fails for a student exactly as good as its baseline most of
the time: the verdict then measures the test split, not the student. A reviewer (and the user
who must decide between more test rows and a wider margin) needs three numbers, which follow
from the interval alone under the normal approximation the percentile interval rests on
(bound = gain - z * se, se shrinking as 1 / sqrt(rows)):

* how often a student equal to its baseline passes at this size;
* how many times as many rows would let 80% of such students pass;
* which margin this size could resolve with 80%.

They are approximations of a power analysis, stated as such ("about"); the bench's measured
version (the bootstrap's own spread, 20 draws of the bound) is ``bench/noninferiority.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
POWER = 0.8  # the conventional target for "this test set can show it"


@dataclass(frozen=True)
class NonInferiorityPower:
    """The standard error of a gain, the margin it is judged against and the interval's level."""

    se: float
    margin: float
    level: float = 0.95

    @classmethod
    def from_interval(cls, low: float, high: float, margin: float, level: float = 0.95) -> NonInferiorityPower:
        """From a two-sided interval of the gain at ``level``: se = half-width / z."""
        return cls((high - low) / 2 / _z(level), margin, level)

    @property
    def z(self) -> float:
        return _z(self.level)

    def pass_probability_if_equal(self) -> float:
        """P(lower bound >= -margin) for a student whose true gain is 0."""
        if self.se <= 0:
            return 1.0
        return _NORMAL.cdf(self.margin / self.se - self.z)

    def rows_factor(self, power: float = POWER) -> float:
        """How many times as many rows would let a student equal to its baseline pass with ``power``
        (infinite for a margin of 0: an equal student then passes (1 - level) / 2 of the time at
        any size, and only a margin helps)."""
        if self.margin <= 0:
            return math.inf
        return (self.se * (self.z + _NORMAL.inv_cdf(power)) / self.margin) ** 2

    def resolvable_margin(self, power: float = POWER) -> float:
        """The smallest margin an equal student passes with ``power`` at this size."""
        return self.se * (self.z + _NORMAL.inv_cdf(power))


def _z(level: float) -> float:
    """The two-sided interval's z: its lower bound is a one-sided test at (1 - level) / 2."""
    return _NORMAL.inv_cdf(1 - (1 - level) / 2)
