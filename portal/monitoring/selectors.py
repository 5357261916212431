"""Reads of monitoring: a node's metric history at the resolution its range needs, and the
alerts the operator pages list."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from portal.monitoring.choices import Severity
from portal.monitoring.models import Alert, Rollup, Sample
from portal.nodes.models import Node

METRICS = ("cpu_percent", "memory_percent", "disk_percent")


def history(node_id: int, hours: int, now=None) -> dict:
    """Raw samples up to MONITORING_RAW_QUERY_HOURS (at most the raw retention), 5-minute
    rollups beyond: ``{"resolution": "raw"|"5m", "points": [...]}``, oldest first."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    raw_hours = min(settings.MONITORING_RAW_QUERY_HOURS, settings.MONITORING_RAW_RETENTION_HOURS)
    if hours <= raw_hours:
        rows = (
            Sample.objects.filter(node_id=node_id, at__gte=since)
            .order_by("at")
            .values_list(
                "at",
                "cpu_percent",
                "memory_percent",
                "disk_percent",
                "disk_used_gb",
                "load1",
                "gauges",
            )
        )
        points = [
            {
                "at": at,
                "cpu_percent": cpu,
                "memory_percent": memory,
                "disk_percent": disk,
                "disk_used_gb": used,
                "load1": load1,
                "gauges": gauges or {},
            }
            for at, cpu, memory, disk, used, load1, gauges in rows
        ]
        return {"resolution": "raw", "points": points}
    fields = (
        "bucket",
        "samples",
        "cpu_min",
        "cpu_avg",
        "cpu_max",
        "memory_min",
        "memory_avg",
        "memory_max",
        "disk_min",
        "disk_avg",
        "disk_max",
        "disk_used_gb_max",
        "load1_min",
        "load1_avg",
        "load1_max",
    )
    rollups = (
        Rollup.objects.filter(node_id=node_id, bucket__gte=since)
        .order_by("bucket")
        .values_list(*fields)
    )
    points = []
    for row in rollups:
        item = dict(zip(fields, row, strict=True))
        point = {
            "at": item["bucket"],
            "samples": item["samples"],
            "disk_used_gb": item["disk_used_gb_max"],
            "load1": item["load1_avg"],
            "load1_max": item["load1_max"],
        }
        for metric in METRICS:
            short = metric.removesuffix("_percent")
            point[metric] = item[f"{short}_avg"]
            point[f"{metric}_min"] = item[f"{short}_min"]
            point[f"{metric}_max"] = item[f"{short}_max"]
        points.append(point)
    return {"resolution": "5m", "points": points}


# Alerts for the operator pages (portal.monitoring.views): the worst first.
SEVERITY_RANK = {Severity.HIGH: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class AlertFilters:
    """What the operator's alert list is narrowed to; None: any."""

    severity: str | None = None
    type: str | None = None
    group_id: int | None = None
    resolved_days: int | None = None  # also the alerts resolved in the last n days


def _worst_first(rows: QuerySet[Alert]) -> QuerySet[Alert]:
    rank = Case(
        *(When(severity=severity, then=Value(n)) for severity, n in SEVERITY_RANK.items()),
        default=Value(len(SEVERITY_RANK)),
        output_field=IntegerField(),
    )
    return rows.annotate(severity_rank=rank).order_by(
        "resolved", "severity_rank", "-created_at", "-id"
    )


def _with_what_they_are_about(rows: QuerySet[Alert]) -> QuerySet[Alert]:
    """One query for the rows and the node, group or customer each one names."""
    return rows.select_related("node__group", "group", "customer")


def about_group(group_id: int) -> Q:
    """The alerts of a group's nodes and the group's own (down site) alerts."""
    return Q(node__group_id=group_id) | Q(node__isnull=True, group_id=group_id)


def alert_rows(filters: AlertFilters = AlertFilters(), now=None) -> QuerySet[Alert]:
    """Open alerts (and, with ``resolved_days``, the recently resolved ones after them),
    most severe and newest first."""
    rows = Alert.objects.all()
    if filters.resolved_days:
        since = (now or timezone.now()) - timedelta(days=filters.resolved_days)
        rows = rows.filter(Q(resolved=False) | Q(resolved_at__gte=since))
    else:
        rows = rows.filter(resolved=False)
    if filters.severity:
        rows = rows.filter(severity=filters.severity)
    if filters.type:
        rows = rows.filter(type=filters.type)
    if filters.group_id:
        rows = rows.filter(about_group(filters.group_id))
    return _worst_first(_with_what_they_are_about(rows))


def open_alert_counts() -> dict[str, int]:
    """Open alerts by severity, every severity present (one query)."""
    counts = dict(
        Alert.objects.filter(resolved=False)
        .values("severity")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("severity", "n")
    )
    return {severity: counts.get(severity, 0) for severity in SEVERITY_RANK}


def node_alerts(node: Node, resolved_limit: int) -> tuple[list[Alert], list[Alert]]:
    """A node's open alerts, with its group's while the whole group (site) is down (its
    down alert is held then), and its last ``resolved_limit`` resolved ones."""
    about = Q(node=node)
    if node.group_id:
        about |= Q(node__isnull=True, group_id=node.group_id)
    open_ = _worst_first(_with_what_they_are_about(Alert.objects.filter(about, resolved=False)))
    resolved = _with_what_they_are_about(Alert.objects.filter(node=node, resolved=True)).order_by(
        F("resolved_at").desc(nulls_last=True), "-id"
    )[:resolved_limit]
    return list(open_), list(resolved)
