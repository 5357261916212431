"""Reads of monitoring: a node's metric history at the resolution its range needs."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.monitoring.models import Rollup, Sample

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
