"""Operate: start, stop, restart, status, logs and resize (one job per node and customer), a
plan change (resize), rename (no job)."""

from django.conf import settings
from django.db import transaction
from django.db.models import F

from portal.accounts.models import Customer, Plan
from portal.core.errors import Conflict, PortalError
from portal.jobs.models import Job
from portal.workspaces import naming
from portal.workspaces.actions import runs
from portal.workspaces.actions.create import check_name_free
from portal.workspaces.choices import OPERATIONS
from portal.workspaces.models import Workspace


def check_operation(workspace: Workspace, operation: str) -> None:
    allowed = OPERATIONS.get(operation)
    if allowed is None:
        raise PortalError(f"Unknown operation {operation!r}.", field="operation")
    job = workspace.current_job
    if workspace.busy and job is not None:
        raise Conflict(
            f"Workspace {workspace.slug} is busy (job {job.pk} is "
            f"{job.status}); try again when it is done.",
            field="status",
            code="busy",
        )
    if workspace.status not in allowed:
        raise Conflict(
            f"Cannot {operation} a {workspace.status} workspace.",
            field="status",
            code="invalid_state",
        )


def _claim(workspaces, operation: str) -> list[Workspace]:
    """Lock the rows and re-check them: of two clicks, one job."""
    locked = list(
        Workspace.objects.select_for_update(of=("self",))
        .select_related("node", "customer", "current_job")
        .filter(pk__in=[w.pk for w in workspaces])
    )
    for workspace in locked:
        check_operation(workspace, operation)
    return locked


def do_operate(workspaces, operation: str, *, by=None) -> list[Job]:
    """start/stop/restart/status/logs/resize for workspaces: one job per node and customer."""
    launched = []
    for group in runs.group_by_run(workspaces):
        with transaction.atomic():
            locked = _claim(group, operation)
            if operation == "resize":
                job = _launch_resize(locked, by)
            else:
                job = runs.launch_for(
                    locked,
                    runs.CONTROL,
                    "workspace_control.yml",
                    by=by,
                    extra={
                        "workspace_control_action": operation,
                        "workspace_log_lines": settings.WORKSPACE_LOG_LINES,
                    },
                )
            fields: dict[str, object] = {"current_job": job}
            if operation == "stop":
                fields.update(route_wanted=False)  # the route goes first
            for workspace in locked:
                workspace.note(f"{operation} requested (job {job.pk})", job=job, by=by, **fields)
            launched.append(job)
    return launched


def _launch_resize(locked: list[Workspace], by) -> Job:
    for workspace in locked:
        plan = workspace.customer.plan
        Workspace.objects.filter(pk=workspace.pk).update(
            disk_quota_gb=plan.disk_quota_gb,
            cpu_limit=plan.cpu_limit,
            memory_limit_mb=plan.memory_limit_mb,
        )
        workspace.refresh_from_db()
    return runs.launch_for(
        locked, runs.RESIZE, "workspace_resize.yml", secret=runs.passwords(locked), by=by
    )


@transaction.atomic
def do_change_plan(customer: Customer, plan: Plan, *, by=None) -> list[Job]:
    """A new plan re-applies quota and limits to every workspace that runs or is stopped."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    live = Workspace.objects.filter(customer=customer).live().count()
    if live > plan.workspace_limit:
        raise Conflict(
            f"{customer} has {live} workspaces; the {plan.name} plan allows "
            f"{plan.workspace_limit}.",
            field="plan",
            code="plan_limit",
        )
    Customer.objects.filter(pk=customer.pk).update(plan=plan)
    resizable = Workspace.objects.filter(customer=customer, status__in=OPERATIONS["resize"])
    idle = [w for w in resizable.select_related("current_job") if not w.busy]
    return do_operate(idle, "resize", by=by) if idle else []


def do_rename(workspace: Workspace, name, *, by=None) -> Workspace:
    name = naming.check_name(name)
    with transaction.atomic():
        Customer.objects.select_for_update(no_key=True).filter(pk=workspace.customer_id).first()
        if name != workspace.name:
            check_name_free(workspace.customer, name)
            # History only: the status reason (e.g. "provisioning on …") stays.
            workspace.note(
                f"renamed from {workspace.name!r} to {name!r}",
                by=by,
                name=name,
                status_reason=F("status_reason"),
            )
    return workspace
