"""Reads of clusters: the rows the API and the admin list, and the old system's export.

``registered-nodes.json`` (the old shape, keyed by MAC)::

    {"52:54:00:12:34:56": {"hostname": "pve-1", "ip": "10.0.0.11", "mac": "52:54:00:12:34:56",
      "type": "proxmox", "status": "registered", "registered_at": "2026-…Z",
      "reprovision_status": "clustered", "reprovision_started": "2026-…Z",
      "last_update": "2026-…Z"}}

``reprovision_status`` is derived from the node's latest run (models.legacy_status); a node
never run since its import keeps what the old file said. Nodes that never registered (no
registration and nothing imported) are left out, as the old file only held registered ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Prefetch,
    QuerySet,
    Sum,
)

from portal.clusters.choices import NodeStatus, RunStatus
from portal.clusters.models import (
    RUN_ACTIVE,
    ClusterNode,
    NodeReprovision,
    ReprovisionEvent,
    ReprovisionRun,
    legacy_status,
)

NODE_TYPE = "proxmox"
REGISTERED = "registered"


def runs_with_timeline(rows: QuerySet[ReprovisionRun]) -> QuerySet[ReprovisionRun]:
    """Each run's nodes with their history, and the run's own moves, in a few queries."""
    history = ReprovisionEvent.objects.select_related("by", "job").order_by("at", "id")
    return rows.select_related("cluster", "requested_by").prefetch_related(
        Prefetch(
            "node_runs",
            queryset=NodeReprovision.objects.select_related("cluster_node__node")
            .prefetch_related(Prefetch("history", queryset=history))
            .order_by("cluster_node__node__name"),
        ),
        Prefetch("events", queryset=history.filter(node_run__isnull=True), to_attr="run_events"),
    )


def latest_node_runs(nodes: list[ClusterNode]) -> dict[int, NodeReprovision]:
    """Each node's latest NodeReprovision (by run), if any."""
    latest: dict[int, NodeReprovision] = {}
    rows = NodeReprovision.objects.filter(cluster_node__in=nodes).select_related("run")
    for node_run in rows.order_by("cluster_node_id", "-run__created_at", "-pk"):
        latest.setdefault(node_run.cluster_node_id, node_run)
    return latest


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def legacy_entry(node: ClusterNode, node_run: NodeReprovision | None) -> dict[str, Any]:
    if node_run is not None:
        status: str | None = legacy_status(node_run.status)
        started: datetime | None = node_run.run.created_at
        last_update: datetime | None = max(node_run.updated_at, node.updated_at)
    else:
        status = node.legacy_reprovision_status or None
        started = node.legacy_reprovision_started
        last_update = node.legacy_last_update or node.updated_at
    return {
        "hostname": node.hostname or node.node.name,
        "ip": node.ip or node.node.address,
        "mac": node.mac,
        "type": NODE_TYPE,
        "status": REGISTERED,
        "registered_at": _iso(node.registered_at),
        "reprovision_status": status,
        "reprovision_started": _iso(started),
        "last_update": _iso(last_update),
    }


def registered_nodes() -> dict[str, dict[str, Any]]:
    """The old ``registered-nodes.json``: every registered node, keyed by MAC."""
    nodes = list(
        ClusterNode.objects.filter(registered_at__isnull=False)
        .select_related("node")
        .order_by("mac")
    )
    latest = latest_node_runs(nodes)
    return {node.mac: legacy_entry(node, latest.get(node.pk)) for node in nodes}


# --- figures (/metrics) -----------------------------------------------------------------------


def run_counts() -> dict[str, int]:
    """Runs by status (every status, 0 included)."""
    counts = dict(ReprovisionRun.objects.values_list("status").annotate(n=Count("pk")).order_by())
    return {status: counts.get(status, 0) for status in RunStatus.values}


def node_counts_in_active_runs() -> dict[str, int]:
    """Nodes of requested or running runs, by phase."""
    counts = dict(
        NodeReprovision.objects.filter(run__status__in=RUN_ACTIVE)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {status: counts.get(status, 0) for status in NodeStatus.values}


def clustered_run_seconds() -> tuple[int, float]:
    """(runs that clustered, their total seconds from start to clustered)."""
    took = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
    row = ReprovisionRun.objects.filter(
        status=RunStatus.CLUSTERED, finished_at__isnull=False
    ).aggregate(n=Count("pk"), total=Sum(took))
    return row["n"], row["total"].total_seconds() if row["total"] else 0.0
