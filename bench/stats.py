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
