"""Baselines: a node's usual value of a metric for each hour of the week, for the baseline
rules ("unusual activity": a node making ten times its usual API calls at 3 am on a Sunday).

For the hour of the week that has begun, ``compute`` reads the rollups (5-minute averages)
of that same hour in each of the last MONITORING_BASELINE_WEEKS weeks and stores per node
and metric their mean and standard deviation (one aggregate per built-in metric; the extra
gauges' averages are read from the rollups' JSON in Python, for the nodes that send any).
A node with fewer than MONITORING_BASELINE_MIN_BUCKETS such rollups has no baseline, so a
new node is never "unusual". The beat task computes each hour once, when it begins, and
keeps only that hour's rows (one per node and metric).

The evaluator turns a value into a score: how many spreads it is from the mean, the spread
being the deviation floored at the rule's ``min_spread`` and at 10 % of the mean (a metric
that never moved would otherwise fire on any noise).
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, F, Q

from portal.monitoring.choices import RuleKind
from portal.monitoring.models import AlertRule, Baseline, Rollup

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
RELATIVE_FLOOR = 0.1
# The built-in metrics' averages in a rollup.
ROLLUP_AVERAGE = {
    "cpu_percent": "cpu_avg",
    "memory_percent": "memory_avg",
    "disk_percent": "disk_avg",
    "load1": "load1_avg",
}


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_of_week(moment: datetime) -> int:
    """0 for Monday 00:00-01:00 UTC ... 167 for Sunday 23:00-24:00 UTC."""
    return moment.weekday() * 24 + moment.hour


def spread(mean: float, deviation: float, min_spread: float) -> float:
    return max(deviation, min_spread, abs(mean) * RELATIVE_FLOOR)


def score(value: float, mean: float, deviation: float, min_spread: float) -> float:
    """How many spreads ``value`` is above (positive) or below (negative) the usual."""
    return (value - mean) / spread(mean, deviation, min_spread)


def _windows(start: datetime) -> Q:
    weeks = settings.MONITORING_BASELINE_WEEKS
    condition = Q()
    for back in range(1, weeks + 1):
        begin = start - back * WEEK
        condition |= Q(bucket__gte=begin, bucket__lt=begin + HOUR)
    return condition


def _builtin(metric: str, windows: Q) -> Iterable[tuple[int, float, float, int]]:
    """(node id, mean, mean of squares, rollups) per node: one aggregate (no STDDEV in
    SQLite, so the variance comes from the mean of squares)."""
    column = ROLLUP_AVERAGE[metric]
    rows = (
        Rollup.objects.filter(windows)
        .exclude(**{f"{column}__isnull": True})
        .values("node_id")
        .annotate(mean=Avg(column), squares=Avg(F(column) * F(column)), n=Count("id"))
        .order_by()
    )
    for row in rows:
        yield row["node_id"], row["mean"], row["squares"], row["n"]


def _gauges(metrics: set[str], windows: Q) -> dict[str, list[tuple[int, float, float, int]]]:
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    rows = Rollup.objects.filter(windows).exclude(gauges=None).values_list("node_id", "gauges")
    for node_id, gauges in rows.iterator(chunk_size=5000):
        for name, value in (gauges or {}).items():
            if name in metrics and isinstance(value, int | float):
                acc = sums[(name, node_id)]
                acc[0] += value
                acc[1] += value * value
                acc[2] += 1
    out: dict[str, list[tuple[int, float, float, int]]] = defaultdict(list)
    for (name, node_id), (total, squares, count) in sums.items():
        out[name].append((node_id, total / count, squares / count, int(count)))
    return out


def metrics_watched() -> set[str]:
    return set(
        AlertRule.objects.filter(kind=RuleKind.BASELINE, enabled=True).values_list(
            "metric", flat=True
        )
    )


def compute(now: datetime, metrics: set[str] | None = None) -> int:
    """Store the baselines of the hour of the week ``now`` is in, for the metrics of the
    enabled baseline rules (or ``metrics``); returns the rows written. Replaces the rows of
    those metrics and of the other hours in one transaction."""
    metrics = metrics_watched() if metrics is None else metrics
    if not metrics:
        return 0
    start = hour_start(now)
    windows = _windows(start)
    found = {metric: list(_builtin(metric, windows)) for metric in metrics & set(ROLLUP_AVERAGE)}
    gauge_metrics = metrics - set(ROLLUP_AVERAGE)
    if gauge_metrics:
        found.update(_gauges(gauge_metrics, windows))
    how = hour_of_week(start)
    rows = [
        Baseline(
            node_id=node_id,
            metric=metric,
            hour_of_week=how,
            mean=mean,
            deviation=math.sqrt(max(squares - mean * mean, 0.0)),
            buckets=n,
            computed_at=now,
        )
        for metric, stats in found.items()
        for node_id, mean, squares, n in stats
        if n >= settings.MONITORING_BASELINE_MIN_BUCKETS
    ]
    with transaction.atomic():
        # Only the current hour is ever read: the table stays one row per node and metric.
        Baseline.objects.filter(~Q(hour_of_week=how) | Q(metric__in=metrics)).delete()
        Baseline.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def compute_if_due(now: datetime) -> int | None:
    """Compute the hour that has begun unless that was done since it began (rows computed,
    or None when there was nothing to do)."""
    metrics = metrics_watched()
    if not metrics:
        return None
    start = hour_start(now)
    done = set(
        Baseline.objects.filter(hour_of_week=hour_of_week(start), computed_at__gte=start)
        .values_list("metric", flat=True)
        .distinct()
    )
    if metrics <= done:
        return None
    return compute(now, metrics)


def metrics_with_baselines(metrics: set[str], now: datetime) -> set[str]:
    """Which of ``metrics`` have a baseline of some node for this hour of the week."""
    how = hour_of_week(now)
    return {
        metric
        for metric in metrics
        if Baseline.objects.filter(hour_of_week=how, metric=metric).exists()
    }


def current(
    metrics: set[str], first: int, last: int, now: datetime
) -> dict[tuple[str, int], tuple[float, float]]:
    """The baselines of nodes ``first``..``last`` for this hour of the week:
    (metric, node id) -> (mean, deviation)."""
    rows = Baseline.objects.filter(
        hour_of_week=hour_of_week(now),
        metric__in=metrics,
        node_id__gte=first,
        node_id__lte=last,
    ).values_list("metric", "node_id", "mean", "deviation")
    return {(metric, node_id): (mean, deviation) for metric, node_id, mean, deviation in rows}
