"""Order statistics used by every scenario (no numpy: the harness stays light)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """Median of the values; NaN for none."""
    return statistics.median(values) if values else float("nan")


def rounded(value: float, digits: int = 3) -> float | None:
    """A JSON-friendly figure: NaN becomes None, everything else is rounded."""
    if value != value:  # NaN
        return None
    return round(value, digits)
