"""A run: one job acting on workspaces of ONE node and ONE customer (its output is visible
to the customer). The job action names; launching a run; reading back what it reported.

:func:`group_by_run` splits any selection that way, :func:`launch_for` launches one job for a
group, :func:`launch_delete` one delete (or rollback) run per group. The playbook reports per
workspace under ``workspace_results`` (:func:`workspace_results`); :func:`never_reached`
tells a run that did nothing on its node from one that may have left something.
"""

from django.conf import settings
from django.db import transaction

from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.nodes.models import Node
from portal.workspaces.models import Workspace

# The job actions of workspaces (registered with their handlers in results.py).
CREATE = "workspaces.create"
DELETE = "workspaces.delete"
ROLLBACK = "workspaces.rollback"
CONTROL = "workspaces.control"
RESIZE = "workspaces.resize"


def item_vars(workspace: Workspace) -> dict:
    return {
        "id": workspace.pk,
        "slug": workspace.slug,
        "username": workspace.linux_username,
        "port": workspace.port,
        "bind_address": workspace.node.address,
        "quota_gb": workspace.disk_quota_gb,
        "cpu_quota_percent": int(workspace.cpu_limit * 100),
        "memory_max_mb": workspace.memory_limit_mb,
    }


def playbook_vars(node: Node, workspaces) -> dict:
    return {
        "workspace_items": [item_vars(workspace) for workspace in workspaces],
        "workspace_root": node.workspace_root,
        "workspace_quota_backend": node.workspace_quota_backend,
        "code_server_package": settings.CODE_SERVER_PACKAGE,
        "code_server_version": settings.CODE_SERVER_VERSION,
    }


def passwords(workspaces) -> dict:
    return {"workspace_passwords": {workspace.slug: workspace.password for workspace in workspaces}}


def group_by_run(workspaces) -> list[list[Workspace]]:
    groups: dict[tuple, list] = {}
    for workspace in workspaces:
        groups.setdefault((workspace.node_id, workspace.customer_id), []).append(workspace)
    return list(groups.values())


def launch_for(
    workspaces: list[Workspace], action: str, playbook: str, *, extra=None, secret=None, by=None
) -> Job:
    """One job acting on workspaces of one node and one customer."""
    node = workspaces[0].node
    return jobs.launch(
        playbook=playbook,
        action=action,
        nodes=[node],
        nodes_loaded=True,
        extra_vars={**playbook_vars(node, workspaces), **(extra or {})},
        secret_vars=secret,
        target=workspaces[0] if len(workspaces) == 1 else None,
        customer=workspaces[0].customer,
        requested_by=by,
    )


def launch_delete(workspaces: list[Workspace], *, by=None, action=DELETE) -> list[Job]:
    """``workspace_delete.yml`` for the workspaces, one run per node and customer: a delete
    (``DELETE``), or the undoing of a create that failed halfway (``ROLLBACK``, whose
    history line is the workspace's status reason). Raises when the node refuses jobs
    (disabled): the caller decides."""
    launched = []
    for group in group_by_run(workspaces):
        with transaction.atomic():
            job = launch_for(group, action, "workspace_delete.yml", by=by)
            for workspace in group:
                message = (
                    f"{workspace.status_reason} (job {job.pk})"
                    if action == ROLLBACK
                    else f"removing from {workspace.node.name} (job {job.pk})"
                )
                workspace.note(message, job=job, current_job=job)
            launched.append(job)
    return launched


def move_all(workspaces, to, allowed_from, message, *, job=None, by=None, **fields) -> list:
    return [
        workspace
        for workspace in workspaces
        if workspace.move(to, allowed_from, message=message, job=job, by=by, **fields)
    ]


# --- what a run reported -------------------------------------------------------------------


def workspace_results(job: Job) -> dict:
    stats = job.events.filter(event="playbook_on_stats").values_list("event_data", flat=True)
    data = (stats.first() or {}).get("artifact_data") or {}
    results = data.get("workspace_results")
    return results if isinstance(results, dict) else {}


def job_workspaces(job: Job) -> list[Workspace]:
    ids = [item.get("id") for item in job.extra_vars.get("workspace_items", [])]
    return list(
        Workspace.objects.filter(pk__in=ids, current_job=job)
        .select_related("node", "customer")
        .order_by("id")
    )


# --- did a run reach its node? -------------------------------------------------------------

# Tasks that run on the controller: their "ok" on a host says nothing about the node.
CONTROLLER_ACTIONS = frozenset(
    prefix + name
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in (
        "set_fact",
        "set_stats",
        "debug",
        "assert",
        "fail",
        "meta",
        "include_role",
        "include_tasks",
        "import_role",
        "import_tasks",
        "include_vars",
        "pause",
        "validate_argument_spec",
    )
)
HOST_RESULT_EVENTS = (
    "runner_on_ok",
    "runner_on_failed",
    "runner_item_on_ok",
    "runner_item_on_failed",
    "runner_on_async_ok",
    "runner_on_async_failed",
    "runner_on_async_poll",
    "runner_retry",
)


def unreachable(job: Job) -> bool:
    return job.status == JobStatus.FAILED and any(
        (counts or {}).get("unreachable") for counts in (job.host_summary or {}).values()
    )


def _touched_a_node(job: Job) -> bool:
    results = job.events.filter(event__in=HOST_RESULT_EVENTS).values_list("event_data", flat=True)
    return any((data or {}).get("task_action") not in CONTROLLER_ACTIONS for data in results)


def never_reached(job: Job) -> bool:
    """True only when no attempt of this run (the job and the attempts it retried) did
    anything on the node: each ended ``failed`` with its node unreachable (its events all
    stored), and none has a result of a task that ran on a host rather than on the
    controller. A lost, canceled or timed-out run, or one with any such result, may have
    left something: it is rolled back as before."""
    attempt: Job | None = job
    while attempt is not None:
        if not unreachable(attempt) or _touched_a_node(attempt):
            return False
        attempt = attempt.retry_of
    return True
