"""The power driver's calls for a node of a run (portal.clusters.power), and their tasks.

The Celery tasks (portal/clusters/tasks.py) are thin: they load the node-run and call
:func:`do_reimage` or :func:`do_disable_network_boot`. Both are enqueued on commit only, so
no machine is power-cycled for a run that was rolled back.
"""

from __future__ import annotations

import logging

from django.db import transaction

from portal.clusters.actions.progress import settle_run
from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import ClusterNode, NodeReprovision, ReprovisionRun
from portal.clusters.power import PowerError, PowerTarget, get_driver

logger = logging.getLogger(__name__)
R_RUNNING = "running"


def power_target(cluster_node: ClusterNode) -> PowerTarget:
    return PowerTarget(
        node=cluster_node.node.name,
        mac=cluster_node.mac,
        address=cluster_node.bmc_address,
        username=cluster_node.bmc_username,
        password=cluster_node.bmc_password,
        options=dict(cluster_node.power_options or {}),
    )


def enqueue_reimage(node_run: NodeReprovision) -> None:
    from portal.clusters.tasks import reimage

    node_run_id = node_run.pk
    transaction.on_commit(lambda: reimage.apply_async(args=(node_run_id,)))


def enqueue_disable_network_boot(node_run: NodeReprovision) -> None:
    from portal.clusters.tasks import disable_network_boot

    node_run_id = node_run.pk
    transaction.on_commit(lambda: disable_network_boot.apply_async(args=(node_run_id,)))


def _load(node_run_id: int) -> NodeReprovision | None:
    return (
        NodeReprovision.objects.select_related("cluster_node__node", "run")
        .filter(pk=node_run_id)
        .first()
    )


def do_reimage(node_run_id: int) -> NodeReprovision | None:
    """Network boot next, then power cycle: requested -> rebooting (the run: running), or
    error with the driver's reason. A node-run no longer requested is left alone (canceled,
    or a duplicate message)."""
    node_run = _load(node_run_id)
    if node_run is None or node_run.status != N.REQUESTED:
        return node_run
    driver_name = node_run.cluster_node.power_driver
    try:
        get_driver(driver_name).reimage(power_target(node_run.cluster_node))
    except (PowerError, ValueError) as exc:
        node_run.move(N.ERROR, [N.REQUESTED], reason=f"reimage ({driver_name}) failed: {exc}")
        settle_run(node_run.run_id)
        return node_run
    with transaction.atomic():
        if node_run.move(
            N.REBOOTING, [N.REQUESTED], reason=f"reimage sent ({driver_name}): network boot"
        ):
            run = ReprovisionRun.objects.get(pk=node_run.run_id)
            run.move(R_RUNNING, ["requested"], reason="first node rebooting")
    return node_run


def do_disable_network_boot(node_run_id: int) -> NodeReprovision | None:
    """After the registration: boot from disk from now on (no reinstall loop). A failure is
    the node's reason, never its status: the node installed and registered."""
    node_run = _load(node_run_id)
    if node_run is None:
        return None
    driver_name = node_run.cluster_node.power_driver
    try:
        get_driver(driver_name).disable_network_boot(power_target(node_run.cluster_node))
    except (PowerError, ValueError) as exc:
        logger.warning("disable network boot of node-run %s failed: %s", node_run.pk, exc)
        node_run.note(f"could not switch network boot off ({driver_name}): {exc}")
        return node_run
    node_run.note(f"network boot switched off ({driver_name})")
    return node_run
