"""What the job engine tells the workspaces: one handler per job action, and the registry.

:func:`register_job_actions` (called from apps.py) names, for each job action, its playbook,
its handler here and the retry of an unreachable node (the jobs engine retries; the
workspaces are told by :func:`note_waiting_for_node`; the handler runs after the last try).

Each playbook reports per workspace under ``workspace_results`` (set_stats, keyed by slug);
a job acts on the workspaces whose ``current_job`` it is. A workspace the playbook did not
report on (the run failed, was lost, canceled or never reached the node) is treated as
unknown: after a create it is rolled back with the delete playbook.
"""

import logging

from django.conf import settings
from django.utils import timezone

from portal.jobs import registry
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.selectors import failure_message
from portal.workspaces.actions import create, routes, runs
from portal.workspaces.actions.runs import CONTROL, CREATE, DELETE, RESIZE, ROLLBACK
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)


def register_job_actions() -> None:
    """Each job action: its playbook, its handler below, the retry of an unreachable node."""
    retry = registry.RetryPolicy(
        max_attempts=lambda: settings.WORKSPACE_RETRY_MAX_ATTEMPTS,
        base_delay=lambda: settings.WORKSPACE_RETRY_BASE_SECONDS,
        max_delay=lambda: settings.WORKSPACE_RETRY_MAX_SECONDS,
    )

    def register(name, playbook, on_finish, description, sensitive=()):
        registry.register(
            registry.ActionSpec(
                name=name,
                playbook=playbook,
                sensitive_vars=sensitive,
                retry=retry,
                on_finish=on_finish,
                on_retry=note_waiting_for_node,
                description=description,
            )
        )

    secret = ("workspace_passwords",)
    register(
        CREATE,
        "workspace_create.yml",
        apply_create_result,
        "Provision workspaces on a node (user, quota, code-server)",
        secret,
    )
    register(DELETE, "workspace_delete.yml", apply_delete_result, "Remove workspaces from a node")
    register(
        ROLLBACK,
        "workspace_delete.yml",
        apply_rollback_result,
        "Undo what a failed provisioning left on a node",
    )
    register(
        CONTROL,
        "workspace_control.yml",
        apply_control_result,
        "Start, stop, restart, check or read the logs of workspaces",
    )
    register(
        RESIZE,
        "workspace_resize.yml",
        apply_resize_result,
        "Re-apply workspaces' plan limits (quota, memory, CPU)",
        secret,
    )


def _attempts(job: Job) -> int:
    return job.attempt or 1


def _item_ok(job: Job, result) -> bool:
    return job.status == JobStatus.SUCCESSFUL and bool(result) and result.get("ok") is True


def _health(result: dict) -> dict:
    return {
        "active_state": result.get("active_state"),
        "healthy": result.get("healthy"),
        "checked_at": timezone.now().isoformat(),
    }


def _host_facts(result: dict) -> dict:
    fields = {}
    if result.get("quota_backend"):
        fields["quota_backend"] = result["quota_backend"]
    if isinstance(result.get("quota_used_bytes"), int):
        fields["quota_used_bytes"] = result["quota_used_bytes"]
    if "active_state" in result:
        fields["health"] = _health(result)
    return fields


# --- create ---------------------------------------------------------------------------------


def apply_create_result(job: Job) -> None:
    results = runs.workspace_results(job)
    unknown = []
    for workspace in runs.job_workspaces(job):
        result = results.get(workspace.slug)
        if result and result.get("ok") is True:
            _host_ready(workspace, job, result)
        elif result:  # this item failed and the playbook undid what it made for it
            _item_failed(workspace, job, result)
        else:
            unknown.append(workspace)
    if unknown and runs.never_reached(job):
        _never_reached(unknown, job)
    elif unknown:
        _roll_back(unknown, job)
    routes.confirm_at_once_without_traefik()  # with Traefik: the beat's next tick (routes.py)
    _start_next_run(job)


def _start_next_run(job: Job) -> None:
    """Creates that arrived while this run went on form the next run."""
    ids = [item.get("id") for item in job.extra_vars.get("workspace_items", [])]
    first = Workspace.objects.filter(pk__in=ids).values("node_id", "customer_id").first()
    if first is not None:
        create.provision_pending(first["node_id"], first["customer_id"])


def _item_failed(workspace: Workspace, job: Job, result: dict) -> None:
    step = result.get("step") or "provisioning"
    message = f"failed at {step}: {result.get('message') or '?'}"
    if "rollback failed" in message:  # something may be left: keep the port, delete retries
        workspace.move(
            S.FAILED,
            [S.PROVISIONING],
            job=job,
            current_job=None,
            message=f"{message}; delete the workspace to clean up",
        )
        return
    workspace.move(
        S.FAILED,
        [S.PROVISIONING],
        job=job,
        current_job=None,
        on_node=False,
        port=None,
        **_host_facts(result),
        message=f"{message} (rolled back: nothing left on the node)",
    )


def _host_ready(workspace: Workspace, job: Job, result: dict) -> None:
    workspace.note(
        f"code-server answers on {workspace.node.name}:{workspace.port}; "
        "waiting for Traefik's route",
        job=job,
        current_job=None,
        route_wanted=True,
        route_wanted_since=timezone.now(),
        **_host_facts(result),
    )


def _never_reached(workspaces: list[Workspace], job: Job) -> None:
    """Nothing was done on the node: nothing to roll back, the port is free again."""
    for workspace in workspaces:
        tries = _attempts(job)
        workspace.move(
            S.FAILED,
            [S.PROVISIONING],
            job=job,
            current_job=None,
            on_node=False,
            port=None,
            route_wanted=False,
            message=f"node {workspace.node.name} unreachable ({tries} attempt"
            f"{'s' if tries != 1 else ''}: {failure_message(job)}); nothing was done on "
            "it. Delete the workspace, or create it again later.",
        )


def _roll_back(workspaces: list[Workspace], job: Job) -> None:
    reason = failure_message(job)
    for workspace in workspaces:
        workspace.move(
            S.FAILED,
            [S.PROVISIONING],
            job=job,
            current_job=None,
            message=f"provisioning {job.status}: {reason}; rolling back",
        )
    failed = [w for w in workspaces if w.status == S.FAILED]
    if failed:
        runs.launch_delete(failed, action=ROLLBACK)


def apply_rollback_result(job: Job) -> None:
    results = runs.workspace_results(job)
    for workspace in runs.job_workspaces(job):
        result = results.get(workspace.slug)
        if _item_ok(job, result):
            workspace.note(
                "rolled back: nothing left on the node",
                job=job,
                current_job=None,
                on_node=False,
                port=None,
                route_wanted=False,
            )
        else:
            workspace.note(
                f"rollback failed: {failure_message(job)}; delete the workspace to try again",
                job=job,
                current_job=None,
            )


# --- delete ---------------------------------------------------------------------------------


def apply_delete_result(job: Job) -> None:
    results = runs.workspace_results(job)
    for workspace in runs.job_workspaces(job):
        result = results.get(workspace.slug)
        if _item_ok(job, result):
            workspace.move(
                S.DELETED,
                [S.DELETING],
                job=job,
                current_job=None,
                on_node=False,
                port=None,
                deleted_at=timezone.now(),
                health={},
                message=f"deleted from {workspace.node.name}",
            )
        elif not result and runs.unreachable(job):
            tries = _attempts(job)
            workspace.move(
                S.FAILED,
                [S.DELETING],
                job=job,
                current_job=None,
                message=f"delete failed: node {workspace.node.name} unreachable ({tries} "
                f"attempt{'s' if tries != 1 else ''}: {failure_message(job)}); delete "
                "again to retry, or an admin can force the delete (the node may then "
                "keep leftovers)",
            )
        else:
            reason = (result or {}).get("message") or failure_message(job)
            workspace.move(
                S.FAILED,
                [S.DELETING],
                job=job,
                current_job=None,
                message=f"delete failed: {reason}; delete again to retry",
            )


# --- operate --------------------------------------------------------------------------------


def apply_control_result(job: Job) -> None:
    operation = job.extra_vars.get("workspace_control_action", "")
    results = runs.workspace_results(job)
    started = False
    for workspace in runs.job_workspaces(job):
        result = results.get(workspace.slug) or {}
        ok = _item_ok(job, result)
        fields = {"current_job": None, **_host_facts(result)}
        if operation == "logs" and ok:
            fields.update(
                recent_logs=str(result.get("logs", ""))[-20000:], logs_fetched_at=timezone.now()
            )
        if not ok:
            reason = result.get("message") or failure_message(job)
            if operation == "stop":
                fields["route_wanted"] = True  # still running: route it again
            workspace.note(f"{operation} failed: {reason}", job=job, **fields)
        elif operation == "stop":
            workspace.move(S.STOPPED, [S.RUNNING], job=job, message="stopped", **fields)
        elif operation == "start":
            started = True
            workspace.note(
                "started; waiting for Traefik's route",
                job=job,
                route_wanted=True,
                route_wanted_since=timezone.now(),
                **fields,
            )
        else:
            workspace.note(_control_summary(operation, result), job=job, **fields)
    if started:
        routes.confirm_at_once_without_traefik()


def _control_summary(operation: str, result: dict) -> str:
    if operation == "logs":
        return "recent logs fetched"
    state = result.get("active_state") or "unknown"
    health = "healthy" if result.get("healthy") else "not answering /healthz"
    return f"{operation}: unit {state}, {health}"


def apply_resize_result(job: Job) -> None:
    results = runs.workspace_results(job)
    for workspace in runs.job_workspaces(job):
        result = results.get(workspace.slug) or {}
        if _item_ok(job, result):
            workspace.note(
                f"limits applied: {workspace.disk_quota_gb} GB, "
                f"{workspace.memory_limit_mb} MB, {workspace.cpu_limit} CPU",
                job=job,
                current_job=None,
                **_host_facts(result),
            )
        else:
            workspace.note(
                f"resize failed: {result.get('message') or failure_message(job)}",
                job=job,
                current_job=None,
            )


def note_waiting_for_node(job: Job, retry_job: Job) -> None:
    """The jobs engine scheduled ``retry_job`` because the node was unreachable: say so; the
    handler above runs when the last attempt ends."""
    when = retry_job.not_before.strftime("%H:%M:%S") if retry_job.not_before else "soon"
    for workspace in runs.job_workspaces(job):
        if job.action == DELETE:
            workspace.note(
                f"node {workspace.node.name} unreachable: the delete will be "
                f"retried at {when} (attempt {retry_job.attempt}; "
                f"{job.reason or 'unreachable'})",
                job=retry_job,
                current_job=retry_job,
            )
            continue
        workspace.note(
            f"waiting for node {workspace.node.name} ({job.reason or 'unreachable'})"
            f"; retrying at {when}",
            job=retry_job,
            current_job=retry_job,
        )
