"""Start, cancel and retry: checks (4xx) first, then the rows and the first tasks in one
transaction (the reimage tasks are enqueued on commit)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.clusters import signing
from portal.clusters.actions import power
from portal.clusters.actions.progress import end_open_nodes
from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import (
    NODE_FAILED,
    RUN_ACTIVE,
    Cluster,
    ClusterNode,
    NodeReprovision,
    ReprovisionRun,
)
from portal.clusters.naming import cluster_name_validator
from portal.clusters.power import PowerError, get_driver
from portal.core.errors import Conflict, PortalError

MAX_TIMEOUT_MINUTES = 24 * 60
BMC_DRIVERS = ("ipmi", "redfish")
ALL = "all"


# --- checks -----------------------------------------------------------------------------------


def check_cluster(cluster: Cluster) -> None:
    try:
        cluster_name_validator(cluster.name)
    except ValidationError as exc:
        raise PortalError(
            f"Cluster name {cluster.name!r}: {exc.messages[0]}", field="cluster"
        ) from None


def check_timeout(timeout_minutes: Any) -> int:
    if timeout_minutes is None:
        return int(settings.CLUSTERS_RUN_TIMEOUT_MINUTES)
    if isinstance(timeout_minutes, bool) or not isinstance(timeout_minutes, int):
        raise PortalError("The timeout is a whole number of minutes.", field="timeout_minutes")
    if not 1 <= timeout_minutes <= MAX_TIMEOUT_MINUTES:
        raise PortalError(
            f"The timeout is 1-{MAX_TIMEOUT_MINUTES} minutes.", field="timeout_minutes"
        )
    return timeout_minutes


def check_nodes(cluster: Cluster, nodes: Iterable[ClusterNode] | str) -> list[ClusterNode]:
    """The cluster's nodes to reprovision (``"all"``: every node of the cluster)."""
    if nodes == ALL:
        chosen = list(cluster.nodes.select_related("node").order_by("node__name"))
        if not chosen:
            raise PortalError(f"Cluster {cluster.name} has no nodes.", field="nodes")
        return chosen
    assert not isinstance(nodes, str)
    chosen = list(nodes)
    if not chosen:
        raise PortalError("Choose at least one node (or all).", field="nodes")
    if len({node.pk for node in chosen}) != len(chosen):
        raise PortalError("A node is named twice.", field="nodes")
    strangers = [node.node.name for node in chosen if node.cluster_id != cluster.pk]
    if strangers:
        raise PortalError(
            f"Not nodes of cluster {cluster.name}: {', '.join(strangers)}.", field="nodes"
        )
    return chosen


def check_power(nodes: list[ClusterNode]) -> None:
    """Every node's power driver can be called: its options check, a BMC where one is
    needed (before any node is power-cycled)."""
    for node in nodes:
        try:
            get_driver(node.power_driver).check_options(node.power_options)
        except (ValueError, PowerError) as exc:
            raise PortalError(f"Node {node.node.name}: {exc}", field="nodes") from None
        if node.power_driver in BMC_DRIVERS and not node.bmc_address:
            raise PortalError(
                f"Node {node.node.name} has no BMC address ({node.power_driver}).",
                field="nodes",
            )


def check_free(nodes: list[ClusterNode]) -> None:
    busy = (
        NodeReprovision.objects.filter(cluster_node__in=nodes, run__status__in=RUN_ACTIVE)
        .select_related("cluster_node__node")
        .first()
    )
    if busy is not None:
        raise Conflict(
            f"Node {busy.cluster_node.node.name} is in active run {busy.run_id}: wait for it "
            "or cancel it.",
            field="nodes",
            code="node_busy",
        )


# --- start ------------------------------------------------------------------------------------


def start_run(
    user: Any,
    cluster: Cluster,
    nodes: Iterable[ClusterNode] | str = ALL,
    timeout_minutes: int | None = None,
) -> ReprovisionRun:
    """Reprovision ``nodes`` of ``cluster`` (``"all"``: every node), then form the cluster.
    Each node gets its reimage task on commit; the run ends at its deadline at the latest."""
    check_cluster(cluster)
    minutes = check_timeout(timeout_minutes)
    chosen = check_nodes(cluster, nodes)
    check_power(chosen)
    now = timezone.now()
    with transaction.atomic():
        # Serialises runs of one cluster: the check and the rows, or another request's.
        Cluster.objects.select_for_update().get(pk=cluster.pk)
        check_free(chosen)
        run = ReprovisionRun.objects.create(
            cluster=cluster,
            requested_by=user if user is not None and user.pk else None,
            timeout_minutes=minutes,
            deadline=now + timedelta(minutes=minutes),
            status_expires=now + timedelta(minutes=minutes),
        )
        run.record_move("", R.REQUESTED, _started(chosen, minutes), by=user)
        for cluster_node in chosen:
            node_run = _node_run(run, cluster_node, now)
            node_run.record_move("", N.REQUESTED, "reimage requested", by=user)
            power.enqueue_reimage(node_run)
        ClusterNode.objects.filter(pk__in=[n.pk for n in chosen]).update(is_member=False)
    return run


def _started(nodes: list[ClusterNode], minutes: int) -> str:
    names = ", ".join(node.node.name for node in nodes)
    return f"reprovision of {names} requested (run deadline {minutes} minutes)"


def _node_run(run: ReprovisionRun, cluster_node: ClusterNode, now: Any) -> NodeReprovision:
    minutes = int(settings.CLUSTERS_NODE_TIMEOUT_MINUTES)
    deadline = min(now + timedelta(minutes=minutes), run.deadline)
    node_run = NodeReprovision(
        run=run,
        cluster_node=cluster_node,
        deadline_minutes=minutes,
        deadline=deadline,
        was_member=cluster_node.is_member,
        secret=signing.new_secret(),
        token_expires=deadline,
        status_changed_at=now,
    )
    node_run.status_expires = now + (node_run.status_timeout(N.REQUESTED) or timedelta(0))
    node_run.save(force_insert=True)
    return node_run


# --- cancel, retry ----------------------------------------------------------------------------


def cancel_run(run: ReprovisionRun, by: Any = None) -> ReprovisionRun:
    """End the run: every node still moving is canceled (its job too); ready nodes stay."""
    with transaction.atomic():
        locked = ReprovisionRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_terminal:
            raise Conflict(
                f"Run {run.pk} already ended ({locked.status}).",
                field="status",
                code="already_finished",
            )
        who = f" by {by}" if by is not None and getattr(by, "pk", None) else ""
        locked.move(R.CANCELED, reason=f"canceled{who}", by=by)
        end_open_nodes(locked, N.CANCELED, f"run canceled{who}", by=by)
    run.refresh_from_db()
    return run


def retry_node(node_run: NodeReprovision, by: Any = None, timeout_minutes: int | None = None):
    """Reprovision a failed node of a run again (a new deadline, new credentials); an ended
    run is reopened with a new deadline (``timeout_minutes``, default its own)."""
    with transaction.atomic():
        run = ReprovisionRun.objects.select_for_update().get(pk=node_run.run_id)
        locked = NodeReprovision.objects.select_for_update().get(pk=node_run.pk)
        if locked.status not in NODE_FAILED:
            raise Conflict(
                f"Only a failed node can be retried: {locked.cluster_node.node.name} is "
                f"{locked.status}.",
                field="status",
                code="invalid_status",
            )
        if run.status == R.CANCELED:
            raise Conflict(f"Run {run.pk} was canceled.", field="status", code="run_canceled")
        check_cluster(run.cluster)
        check_power([locked.cluster_node])
        now = timezone.now()
        if not run.is_active:
            minutes = check_timeout(timeout_minutes) if timeout_minutes else run.timeout_minutes
            check_free([locked.cluster_node])
            run.deadline = now + timedelta(minutes=minutes)  # the move's deadline reads it
            run.move(
                R.RUNNING,
                reason=f"reopened to retry {locked.cluster_node.node.name}",
                by=by,
                timeout_minutes=minutes,
                deadline=run.deadline,
            )
        minutes = locked.deadline_minutes
        deadline = min(now + timedelta(minutes=minutes), run.deadline)
        locked.deadline = deadline  # the move's deadline is computed from it
        locked.move(
            N.REQUESTED,
            reason="retry: reimage requested",
            by=by,
            deadline=deadline,
            secret=signing.new_secret(),
            token_hash="",
            token_used_at=None,
            token_expires=deadline,
            registration={},
            registered_at=None,
            ready_checks=0,
            error_code="",
            current_job=None,
        )
        power.enqueue_reimage(locked)
    node_run.refresh_from_db()
    return node_run
