"""Prometheus figures of monitoring, read at scrape time: nodes by liveness."""

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness
from portal.nodes.models import Node


class LivenessCollector:
    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "portal_nodes_liveness",
            "Enabled nodes by liveness (nodes without an agent count as unknown)",
            labels=["status"],
        )
        counts = dict.fromkeys(Liveness.values, 0)
        rows = (
            NodeLiveness.objects.filter(node__enabled=True)
            .values("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            counts[row["status"]] += row["n"]
        counts[Liveness.UNKNOWN] += Node.objects.filter(enabled=True, liveness__isnull=True).count()
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family


class AlertCollector:
    def collect(self) -> Iterator[Metric]:
        from portal.monitoring.alerts import open_alert_counts

        family = GaugeMetricFamily(
            "portal_alerts_open", "Open (unresolved) alerts by severity", labels=["severity"]
        )
        for severity, count in open_alert_counts().items():
            family.add_metric([severity], count)
        yield family
