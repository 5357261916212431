"""Medians and percentiles (nearest rank, as the engine computes its own event lag p95)."""

import math
import statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, q: float):
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), 4),
        "median": round(median(values), 4),
        "p95": round(percentile(values, 95), 4),
        "max": round(max(values), 4),
    }


def rounded(value, digits=3):
    return None if value is None else round(value, digits)


def median_interval(values, confidence: float = 0.9):
    """A distribution-free interval for the median of what the values sample: the k-th
    smallest and the k-th largest of n, with k the largest for which the chance that the
    median lies outside, 2 P(Binomial(n, 1/2) < k), is at most 1 - confidence. None when n
    is too small for that confidence (fewer than 5 values at 0.9)."""
    ordered = sorted(v for v in values if v is not None)
    n = len(ordered)
    k, outside = 0, 0.0
    while k < n // 2:
        wider = outside + 2 * math.comb(n, k) / 2**n
        if wider > 1 - confidence:
            break
        k, outside = k + 1, wider
    return (ordered[k - 1], ordered[n - k]) if k else None


def decided(values, op: str, line, confidence: float = 0.9) -> bool:
    """Whether the median's interval lies wholly on one side of a target's line: more pairs
    like these would most likely give the same verdict (if the pairs are independent of each
    other, which a machine whose speed drifts for minutes breaks: bench/README.md)."""
    interval = median_interval(values, confidence)
    if interval is None or op not in ("<=", ">="):
        return False
    low, high = interval
    return high < line or low > line
