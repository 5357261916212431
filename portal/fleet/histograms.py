"""Usage values (percentages) as histograms of 1-point bins: they add up across hours and
VMs, and give an average and a percentile of any union without the raw values.

A bin ``i`` counts the values ``i ≤ v < i + 1`` (values below 0 count in bin 0, 100 and
above in bin 100). A percentile is read by nearest rank and interpolated linearly inside its
bin, so it is within one point of the exact one.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

BINS = 101
METRICS = ("cpu", "memory", "disk")


def empty() -> list[int]:
    return [0] * BINS


def bin_of(value: float) -> int:
    return min(max(math.floor(value), 0), BINS - 1)


def add(total: list[int], more: Iterable[int]) -> list[int]:
    return list(map(operator.add, total, more)) if total else list(more)


def percentile(bins: list[int], q: float) -> float | None:
    """The ``q`` (0-100) percentile of the values counted in ``bins`` (None if none)."""
    count = sum(bins)
    if not count:
        return None
    rank = max(1, math.ceil(q / 100 * count))
    seen = 0
    for index, n in enumerate(bins):
        if n and seen + n >= rank:
            return round(min(index + (rank - seen) / n, 100.0), 2)
        seen += n
    return 100.0  # not reached: the ranks end in the last bin with values


def percentile_cont(values: list[float], q: float) -> float | None:
    """Exact, as PostgreSQL's ``percentile_cont(q / 100)``: linear between the two nearest
    values (for the databases without it)."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = q / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
