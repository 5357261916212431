"""What a finished readiness check or formation does to the run's nodes; the job actions.

Readiness (``cluster_ready`` per host): ready → ``ready``; not ready (or no report: the node
not reachable yet, the job lost) → checked again after CLUSTERS_READY_RECHECK_SECONDS while
the node's deadline and CLUSTERS_READY_MAX_CHECKS allow, else ``timeout`` with the last
reason.

Formation (``proxmox_cluster`` per host): created / joined / member → ``clustered``; error
→ ``error`` with the role's code and message (``error_code``, reason "CODE: message"); no
report for a node → ``error`` with the job's failure.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.clusters.actions import launch
from portal.clusters.actions.progress import settle_run
from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import ClusterNode, NodeReprovision, ReprovisionRun
from portal.core.errors import PortalError
from portal.jobs import registry, selectors
from portal.jobs.models import Job

MEMBER_STATES = frozenset({"created", "joined", "member"})


def register_job_actions() -> None:
    registry.register(
        registry.ActionSpec(
            name=launch.READY,
            playbook=launch.READY_PLAYBOOK,
            on_finish=apply_ready_result,
            timeout=launch.READY_JOB_TIMEOUT,
            description="Check a reprovisioned Proxmox node is ready (SSH, corosync, services)",
        )
    )
    registry.register(
        registry.ActionSpec(
            name=launch.FORM,
            playbook=launch.FORM_PLAYBOOK,
            on_finish=apply_form_result,
            description="Form (or join) a Proxmox cluster once every node of a run is ready",
        )
    )


def _reports(job: Job, key: str) -> dict[str, Any]:
    reported = selectors.stats_data(job).get(key)
    return reported if isinstance(reported, dict) else {}


# --- readiness ------------------------------------------------------------------------------


def apply_ready_result(job: Job) -> None:
    for node_run in NodeReprovision.objects.filter(current_job=job).select_related(
        "cluster_node__node", "run"
    ):
        report = _reports(job, launch.READY_STATS).get(node_run.cluster_node.node.name)
        settle_ready(node_run, job, report)


def settle_ready(node_run: NodeReprovision, job: Job, report: Any) -> None:
    if node_run.status != N.REGISTERED:
        return  # timed out or canceled meanwhile
    if isinstance(report, dict) and report.get("ready") is True:
        node_run.move(N.READY, [N.REGISTERED], reason=str(report.get("reason") or "ready"), job=job)
        settle_run(node_run.run_id)
        return
    why = (
        str(report.get("reason") or "not ready")
        if isinstance(report, dict)
        else f"readiness not reported: {selectors.failure_message(job)}"
    )
    check_again(node_run, why, job)


def check_again(node_run: NodeReprovision, why: str, job: Job) -> None:
    """Another check after the delay, if the node's deadline and the bound allow."""
    delay = settings.CLUSTERS_READY_RECHECK_SECONDS
    due = timezone.now() + timedelta(seconds=delay)
    if node_run.ready_checks >= settings.CLUSTERS_READY_MAX_CHECKS or due >= node_run.deadline:
        checks = node_run.ready_checks
        node_run.move(
            N.TIMEOUT,
            [N.REGISTERED],
            reason=f"not ready after {checks} check(s): {why}",
            job=job,
        )
        settle_run(node_run.run_id)
        return
    try:
        with transaction.atomic():
            retry = launch.launch_ready_check(node_run, delay_seconds=delay)
            node_run.note(
                f"not ready ({why}); checking again in {delay} s (check {node_run.ready_checks})",
                job=retry,
            )
    except PortalError as exc:
        node_run.move(N.ERROR, [N.REGISTERED], reason=f"cannot check readiness: {exc.message}")
        settle_run(node_run.run_id)


# --- formation ------------------------------------------------------------------------------


def apply_form_result(job: Job) -> None:
    run = ReprovisionRun.objects.filter(form_job=job).first()
    if run is None:
        return
    reports = _reports(job, launch.FORM_STATS)
    for node_run in run.node_runs.filter(status=N.JOINING).select_related("cluster_node__node"):
        report = reports.get(node_run.cluster_node.node.name)
        settle_join(node_run, job, report)
    members = [host for host, r in reports.items() if _state(r) in MEMBER_STATES]
    ClusterNode.objects.filter(cluster=run.cluster_id, node__name__in=members).update(
        is_member=True
    )
    settle_run(run.pk)


def _state(report: Any) -> str:
    return str(report.get("state") or "") if isinstance(report, dict) else ""


def settle_join(node_run: NodeReprovision, job: Job, report: Any) -> None:
    state = _state(report)
    if state in MEMBER_STATES:
        node_run.move(N.CLUSTERED, [N.JOINING], reason=f"cluster member ({state})", job=job)
        return
    if state == "error":
        error = report.get("error") if isinstance(report.get("error"), dict) else {}
        code = str(error.get("code") or "error")[:64]
        message = str(error.get("message") or "no message")
        node_run.move(N.ERROR, [N.JOINING], reason=f"{code}: {message}", job=job, error_code=code)
        return
    why = f"unknown state {state!r}" if state else selectors.failure_message(job)
    node_run.move(N.ERROR, [N.JOINING], reason=f"cluster_form.yml did not report: {why}", job=job)
