"""The jobs a run launches: a node's readiness check and the cluster's formation.

Both are launched in the caller's transaction (the job exists if and only if the move that
asked for it committed). The roles' interfaces:

- ``cluster_node_ready.yml`` on one node reports ``set_stats`` ``cluster_ready`` =
  ``{host: {"ready": bool, "reason": str}}``;
- ``cluster_form.yml`` takes ``proxmox_cluster_name``, ``proxmox_cluster_init_node`` (an
  inventory hostname), ``proxmox_cluster_link0`` ({host: address}), ``proxmox_cluster_remove``
  (Proxmox node names to ``pvecm delnode`` first), ``proxmox_cluster_quorum_timeout`` and
  ``proxmox_cluster_join_timeout``, and reports ``proxmox_cluster`` = ``{host: {"state":
  created|joined|member|error, "error": {"code", "message"} | null}}`` and
  ``proxmox_cluster_summary``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.clusters.models import ClusterNode, NodeReprovision, ReprovisionRun
from portal.jobs import actions as jobs
from portal.jobs.models import Job

READY = "clusters.node_ready"
READY_PLAYBOOK = "cluster_node_ready.yml"
READY_STATS = "cluster_ready"
FORM = "clusters.form"
FORM_PLAYBOOK = "cluster_form.yml"
FORM_STATS = "proxmox_cluster"
FORM_SUMMARY = "proxmox_cluster_summary"
READY_JOB_TIMEOUT = 300
# Around the bounded waits of cluster_form.yml: facts, preflight, config, verification.
FORM_JOB_OVERHEAD = 600


def launch_ready_check(node_run: NodeReprovision, delay_seconds: float = 0) -> Job:
    """One readiness check of the node (after ``delay_seconds``); the node-run's current job."""
    not_before = timezone.now() + timedelta(seconds=delay_seconds) if delay_seconds else None
    job = jobs.launch(
        playbook=READY_PLAYBOOK,
        action=READY,
        nodes=[node_run.cluster_node.node],
        target=node_run,
        requested_by=node_run.run.requested_by,
        timeout=READY_JOB_TIMEOUT,
        not_before=not_before,
    )
    NodeReprovision.objects.filter(pk=node_run.pk).update(
        current_job=job, ready_checks=node_run.ready_checks + 1
    )
    node_run.refresh_from_db()
    return job


def form_hosts(run: ReprovisionRun) -> tuple[list[ClusterNode], list[NodeReprovision]]:
    """(every node the formation runs on, the run's node-runs): the run's nodes and the
    cluster's members that are not reprovisioned (a survivor removes and re-adds them)."""
    node_runs = list(run.node_runs.select_related("cluster_node__node").order_by("pk"))
    in_run = {nr.cluster_node_id for nr in node_runs}
    members = ClusterNode.objects.filter(cluster=run.cluster_id, is_member=True).exclude(
        pk__in=in_run
    )
    hosts = [*members.select_related("node").order_by("node__name")]
    hosts += [nr.cluster_node for nr in node_runs]
    return hosts, node_runs


def init_node(run: ReprovisionRun, hosts: list[ClusterNode], reprovisioned: set[int]) -> str:
    """Where the cluster is (or is created): the cluster's init node unless it is being
    reprovisioned while others are members, else a member that stays, else the first node."""
    members = [h for h in hosts if h.is_member and h.pk not in reprovisioned]
    chosen = run.cluster.init_node
    if chosen is not None and chosen in hosts and (chosen.pk not in reprovisioned or not members):
        return chosen.node.name
    return (members or hosts)[0].node.name


def form_variables(run: ReprovisionRun) -> tuple[dict[str, Any], list[ClusterNode]]:
    hosts, node_runs = form_hosts(run)
    reprovisioned = {nr.cluster_node_id for nr in node_runs}
    variables = {
        "proxmox_cluster_name": run.cluster.name,
        "proxmox_cluster_init_node": init_node(run, hosts, reprovisioned),
        "proxmox_cluster_link0": {h.node.name: link0_of(h) for h in hosts},
        "proxmox_cluster_remove": [
            nr.cluster_node.proxmox_name for nr in node_runs if nr.was_member
        ],
        "proxmox_cluster_quorum_timeout": settings.CLUSTERS_QUORUM_TIMEOUT,
        "proxmox_cluster_join_timeout": settings.CLUSTERS_JOIN_TIMEOUT,
    }
    return variables, hosts


def link0_of(cluster_node: ClusterNode) -> str:
    """The registered link0, else the configured one, else its IP, else its SSH address."""
    return str(cluster_node.link0 or cluster_node.ip or cluster_node.node.address)


def launch_form(run: ReprovisionRun) -> Job:
    variables, hosts = form_variables(run)
    timeout = (
        settings.CLUSTERS_QUORUM_TIMEOUT
        + settings.CLUSTERS_JOIN_TIMEOUT * len(hosts)
        + FORM_JOB_OVERHEAD
    )
    return jobs.launch(
        playbook=FORM_PLAYBOOK,
        action=FORM,
        nodes=[host.node for host in hosts],
        extra_vars=variables,
        target=run,
        requested_by=run.requested_by,
        timeout=timeout,
        # A join is silent while it waits for quorum (its own bound ends it first).
        idle_timeout=max(settings.JOB_IDLE_TIMEOUT, settings.CLUSTERS_JOIN_TIMEOUT + 120),
    )
