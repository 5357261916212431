"""What the job engine tells the workspaces: one handler per job action.

Each playbook reports per workspace under ``workspace_results`` (set_stats, keyed by slug);
a job acts on the workspaces whose ``current_job`` it is. A workspace the playbook did not
report on (the run failed, was lost, canceled or never reached the node) is treated as
unknown: after a create it is rolled back with the delete playbook.
"""

import logging

from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.selectors import failure_message
from portal.workspaces import confirm
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)


def workspace_results(job: Job) -> dict:
    stats = job.events.filter(event="playbook_on_stats").values_list("event_data", flat=True)
    data = (stats.first() or {}).get("artifact_data") or {}
    results = data.get("workspace_results")
    return results if isinstance(results, dict) else {}


def job_workspaces(job: Job) -> list[Workspace]:
    ids = [item.get("id") for item in job.extra_vars.get("workspace_items", [])]
    return list(Workspace.objects.filter(pk__in=ids, current_job=job)
                .select_related("node", "customer").order_by("id"))


# --- did a run reach its node? -------------------------------------------------------------

# Tasks that run on the controller: their "ok" on a host says nothing about the node.
CONTROLLER_ACTIONS = frozenset(
    prefix + name for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("set_fact", "set_stats", "debug", "assert", "fail", "meta", "include_role",
                 "include_tasks", "import_role", "import_tasks", "include_vars", "pause",
                 "validate_argument_spec"))
HOST_RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_item_on_ok",
                      "runner_item_on_failed", "runner_on_async_ok", "runner_on_async_failed",
                      "runner_on_async_poll", "runner_retry")


def unreachable(job: Job) -> bool:
    return job.status == JobStatus.FAILED and any(
        (counts or {}).get("unreachable") for counts in (job.host_summary or {}).values())


def _touched_a_node(job: Job) -> bool:
    results = job.events.filter(event__in=HOST_RESULT_EVENTS).values_list("event_data",
                                                                          flat=True)
    return any((data or {}).get("task_action") not in CONTROLLER_ACTIONS for data in results)


def never_reached(job: Job) -> bool:
    """True only when no attempt of this run (the job and the attempts it retried) did
    anything on the node: each ended ``failed`` with its node unreachable (its events all
    stored), and none has a result of a task that ran on a host rather than on the
    controller. A lost, canceled or timed-out run, or one with any such result, may have
    left something: it is rolled back as before."""
    attempt = job
    while attempt is not None:
        if not unreachable(attempt) or _touched_a_node(attempt):
            return False
        attempt = attempt.retry_of
    return True


def _attempts(job: Job) -> int:
    return job.attempt or 1


def _item_ok(job: Job, result) -> bool:
    return job.status == JobStatus.SUCCESSFUL and bool(result) and result.get("ok") is True


def _health(result: dict) -> dict:
    return {"active_state": result.get("active_state"), "healthy": result.get("healthy"),
            "checked_at": timezone.now().isoformat()}


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

    results = workspace_results(job)
    unknown = []
    for workspace in job_workspaces(job):
        result = results.get(workspace.slug)
        if result and result.get("ok") is True:
            _host_ready(workspace, job, result)
        elif result:  # this item failed and the playbook undid what it made for it
            _item_failed(workspace, job, result)
        else:
            unknown.append(workspace)
    if unknown and never_reached(job):
        _never_reached(unknown, job)
    elif unknown:
        _roll_back(unknown, job)
    confirm.schedule()
    _start_next_run(job)


def _start_next_run(job: Job) -> None:
    """Creates that arrived while this run went on form the next run."""
    from portal.workspaces import actions

    ids = [item.get("id") for item in job.extra_vars.get("workspace_items", [])]
    first = Workspace.objects.filter(pk__in=ids).values("node_id", "customer_id").first()
    if first is not None:
        actions.provision_pending(first["node_id"], first["customer_id"])


def _item_failed(workspace: Workspace, job: Job, result: dict) -> None:
    step = result.get("step") or "provisioning"
    message = f"failed at {step}: {result.get('message') or '?'}"
    if "rollback failed" in message:  # something may be left: keep the port, delete retries
        workspace.move(S.FAILED, [S.PROVISIONING], job=job, current_job=None,
                       message=f"{message}; delete the workspace to clean up")
        return
    workspace.move(S.FAILED, [S.PROVISIONING], job=job, current_job=None, on_node=False,
                   port=None, **_host_facts(result),
                   message=f"{message} (rolled back: nothing left on the node)")


def _host_ready(workspace: Workspace, job: Job, result: dict) -> None:
    workspace.note(f"code-server answers on {workspace.node.name}:{workspace.port}; "
                   "waiting for Traefik's route", job=job, current_job=None,
                   route_wanted=True, route_wanted_since=timezone.now(), **_host_facts(result))


def _never_reached(workspaces: list[Workspace], job: Job) -> None:
    """Nothing was done on the node: nothing to roll back, the port is free again."""
    for workspace in workspaces:
        tries = _attempts(job)
        workspace.move(
            S.FAILED, [S.PROVISIONING], job=job, current_job=None, on_node=False, port=None,
            route_wanted=False,
            message=f"node {workspace.node.name} unreachable ({tries} attempt"
                    f"{'s' if tries != 1 else ''}: {failure_message(job)}); nothing was done on "
                    "it. Delete the workspace, or create it again later.")


def _roll_back(workspaces: list[Workspace], job: Job) -> None:
    from portal.workspaces import actions

    reason = failure_message(job)
    for workspace in workspaces:
        workspace.move(S.FAILED, [S.PROVISIONING], job=job, current_job=None,
                       message=f"provisioning {job.status}: {reason}; rolling back")
    failed = [w for w in workspaces if w.status == S.FAILED]
    if failed:
        actions.launch_delete(failed, action=actions.ROLLBACK)


def apply_rollback_result(job: Job) -> None:
    results = workspace_results(job)
    for workspace in job_workspaces(job):
        result = results.get(workspace.slug)
        if _item_ok(job, result):
            workspace.note("rolled back: nothing left on the node", job=job, current_job=None,
                           on_node=False, port=None, route_wanted=False)
        else:
            workspace.note(f"rollback failed: {failure_message(job)}; delete the workspace to "
                           "try again", job=job, current_job=None)


# --- delete ---------------------------------------------------------------------------------

def apply_delete_result(job: Job) -> None:
    results = workspace_results(job)
    for workspace in job_workspaces(job):
        result = results.get(workspace.slug)
        if _item_ok(job, result):
            workspace.move(S.DELETED, [S.DELETING], job=job, current_job=None, on_node=False,
                           port=None, deleted_at=timezone.now(), health={},
                           message=f"deleted from {workspace.node.name}")
        elif not result and unreachable(job):
            tries = _attempts(job)
            workspace.move(
                S.FAILED, [S.DELETING], job=job, current_job=None,
                message=f"delete failed: node {workspace.node.name} unreachable ({tries} "
                        f"attempt{'s' if tries != 1 else ''}: {failure_message(job)}); delete "
                        "again to retry, or an admin can force the delete (the node may then "
                        "keep leftovers)")
        else:
            reason = (result or {}).get("message") or failure_message(job)
            workspace.move(S.FAILED, [S.DELETING], job=job, current_job=None,
                           message=f"delete failed: {reason}; delete again to retry")


# --- operate --------------------------------------------------------------------------------

def apply_control_result(job: Job) -> None:
    operation = job.extra_vars.get("workspace_control_action", "")
    results = workspace_results(job)
    started = False
    for workspace in job_workspaces(job):
        result = results.get(workspace.slug) or {}
        ok = _item_ok(job, result)
        fields = {"current_job": None, **_host_facts(result)}
        if operation == "logs" and ok:
            fields.update(recent_logs=str(result.get("logs", ""))[-20000:],
                          logs_fetched_at=timezone.now())
        if not ok:
            reason = result.get("message") or failure_message(job)
            if operation == "stop":
                fields["route_wanted"] = True  # still running: route it again
            workspace.note(f"{operation} failed: {reason}", job=job, **fields)
        elif operation == "stop":
            workspace.move(S.STOPPED, [S.RUNNING], job=job, message="stopped", **fields)
        elif operation == "start":
            started = True
            workspace.note("started; waiting for Traefik's route", job=job, route_wanted=True,
                           route_wanted_since=timezone.now(), **fields)
        else:
            workspace.note(_control_summary(operation, result), job=job, **fields)
    if started:
        confirm.schedule()


def _control_summary(operation: str, result: dict) -> str:
    if operation == "logs":
        return "recent logs fetched"
    state = result.get("active_state") or "unknown"
    health = "healthy" if result.get("healthy") else "not answering /healthz"
    return f"{operation}: unit {state}, {health}"


def apply_resize_result(job: Job) -> None:
    results = workspace_results(job)
    for workspace in job_workspaces(job):
        result = results.get(workspace.slug) or {}
        if _item_ok(job, result):
            workspace.note(f"limits applied: {workspace.disk_quota_gb} GB, "
                           f"{workspace.memory_limit_mb} MB, {workspace.cpu_limit} CPU",
                           job=job, current_job=None, **_host_facts(result))
        else:
            workspace.note(f"resize failed: {result.get('message') or failure_message(job)}",
                           job=job, current_job=None)


def note_waiting_for_node(job: Job, retry_job: Job) -> None:
    from portal.workspaces import actions

    when = retry_job.not_before.strftime("%H:%M:%S") if retry_job.not_before else "soon"
    for workspace in job_workspaces(job):
        if job.action == actions.DELETE:
            workspace.note(f"node {workspace.node.name} unreachable: the delete will be "
                           f"retried at {when} (attempt {retry_job.attempt}; "
                           f"{job.reason or 'unreachable'})", job=retry_job,
                           current_job=retry_job)
            continue
        workspace.note(f"waiting for node {workspace.node.name} ({job.reason or 'unreachable'})"
                       f"; retrying at {when}", job=retry_job, current_job=retry_job)
