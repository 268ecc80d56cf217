"""Statistics of repeated measurements: median, spread, percentiles (pure)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``values`` by linear interpolation."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """Median of the repetitions and their spread (min..max)."""

    median: float
    low: float
    high: float
    runs: int

    @property
    def spread_pct(self) -> float:
        """Half the min..max range as a percentage of the median (0 when the median is 0)."""
        if self.median == 0:
            return 0.0
        return 100 * (self.high - self.low) / 2 / abs(self.median)


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("summary of no values")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def rate(count: int, seconds: float) -> float:
    """Items per second; 0 when no time elapsed (a run that did nothing)."""
    return count / seconds if seconds > 0 else 0.0
