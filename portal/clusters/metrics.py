"""Prometheus figures of the clusters, read at scrape time (portal.clusters.selectors):
runs by status, the nodes of active runs by phase, the time runs took to cluster."""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily

from portal.clusters import selectors


class ClusterCollector:
    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "portal_cluster_runs", "Reprovision runs by status", labels=["status"]
        )
        for status, count in selectors.run_counts().items():
            runs.add_metric([status], count)
        yield runs
        nodes = GaugeMetricFamily(
            "portal_cluster_nodes_reprovisioning",
            "Nodes of requested or running reprovision runs, by phase",
            labels=["status"],
        )
        for status, count in selectors.node_counts_in_active_runs().items():
            nodes.add_metric([status], count)
        yield nodes
        count, total = selectors.clustered_run_seconds()
        took = SummaryMetricFamily(
            "portal_cluster_run_seconds",
            "Reprovision runs that clustered: start to clustered (average = _sum / _count)",
        )
        took.add_metric([], count_value=count, sum_value=total)
        yield took
