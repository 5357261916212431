"""Customer web UI: a dashboard of workspace cards, kept live by a small JSON poll.

Views declare, they do not decide. Every write goes through the REST API (session + CSRF)
from the page's script; which buttons a card offers comes from the actions' own checks
(``actions.check_operation``) and the API's permission rules, so the page never offers what
the API would refuse and never decides anything the API does not.

The IDE password is never part of a page: the owner fetches it from the API on click.
"""

from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.accounts.selectors import customers_to_choose
from portal.core.errors import PortalError
from portal.jobs.choices import ACTIVE as JOB_ACTIVE
from portal.jobs.models import Job
from portal.jobs.selectors import tasks_in_last_success
from portal.workspaces import actions, selectors
from portal.workspaces.api.views import MayActOnWorkspace
from portal.workspaces.choices import S
from portal.workspaces.explain import status_help
from portal.workspaces.models import Workspace

OPERATIONS_SHOWN = ("start", "stop", "restart", "logs")
JOB_LABELS = {
    actions.CREATE: "provisioning",
    actions.DELETE: "delete",
    actions.ROLLBACK: "rollback",
    actions.RESIZE: "resize",
}
EXPECTED_TASKS_CACHE_SECONDS = 60


def _may_operate(workspace: Workspace, operation: str) -> bool:
    try:
        actions.check_operation(workspace, operation)
    except PortalError:
        return False
    return True


def _may_delete(workspace: Workspace) -> bool:
    # The refusals of actions.do_delete (tests/workspaces/test_views.py keeps them in step).
    return not workspace.busy and workspace.status not in (S.PROVISIONING, S.DELETING, S.DELETED)


def _may_see_password(request, workspace: Workspace) -> bool:
    """The API's own rule for GET /api/workspaces/{id}/password/."""
    view = SimpleNamespace(action="password")
    probe = SimpleNamespace(method="GET", user=request.user)
    return MayActOnWorkspace().has_object_permission(probe, view, workspace)


def job_label(job: Job) -> str:
    return job.extra_vars.get("workspace_control_action") or JOB_LABELS.get(
        job.action, job.action.rsplit(".", 1)[-1]
    )


def expected_tasks(job: Job) -> int | None:
    """How many tasks a run like this one starts: counted in the last successful run of the
    same playbook and operation (an estimate for the progress bar; None when unknown)."""
    operation = job.extra_vars.get("workspace_control_action") or ""
    key = f"workspaces:expected-tasks:{job.playbook}:{job.action}:{operation}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    count = (
        tasks_in_last_success(job, workspace_control_action=operation)
        if operation
        else tasks_in_last_success(job)
    )
    cache.set(key, count, EXPECTED_TASKS_CACHE_SECONDS)
    return count or None


def _job(workspace: Workspace) -> dict | None:
    job = workspace.current_job
    if job is None:
        return None
    active = job.status in JOB_ACTIVE
    return {
        "id": job.pk,
        "status": job.status,
        "label": job_label(job),
        "active": active,
        "expected_tasks": expected_tasks(job) if active else None,
    }


def _limits(workspace: Workspace) -> str:
    return (
        f"{workspace.disk_quota_gb} GB disk · {workspace.cpu_limit.normalize():f} CPU · "
        f"{workspace.memory_limit_mb} MB memory"
    )


def _usage(workspace: Workspace) -> str:
    if workspace.quota_used_bytes is None:
        return "disk use not measured yet"
    backend = f" (quota: {workspace.quota_backend})" if workspace.quota_backend else ""
    return f"{filesizeformat(workspace.quota_used_bytes)} used{backend}"


def _health(workspace: Workspace) -> str:
    health = workspace.health or {}
    if not health.get("active_state"):
        return ""
    answer = "answers /healthz" if health.get("healthy") else "not answering /healthz"
    return f"unit {health['active_state']}, {answer}"


def card(request, workspace: Workspace, may_act: bool) -> dict:
    """Everything a card shows; the template and the live JSON both use it."""
    can = {op: may_act and _may_operate(workspace, op) for op in OPERATIONS_SHOWN}
    can["delete"] = may_act and _may_delete(workspace)
    can["password"] = _may_see_password(request, workspace)
    return {
        "id": workspace.pk,
        "name": workspace.name,
        "slug": workspace.slug,
        "url": workspace.url,
        "customer": workspace.customer.name,
        "owner": workspace.owner.get_username(),
        "status": workspace.status,
        "status_label": workspace.get_status_display(),
        "status_reason": workspace.status_reason,
        "status_help": status_help(workspace.status, workspace.status_reason),
        "status_changed_at": workspace.status_changed_at.isoformat(),
        "running": workspace.status == S.RUNNING,
        "node": workspace.node.name,
        "port": workspace.port,
        "address": f"{workspace.node.name}:{workspace.port}" if workspace.port else "—",
        "limits": _limits(workspace),
        "usage": _usage(workspace),
        "health": _health(workspace),
        "busy": workspace.busy,
        "job": _job(workspace),
        "can": can,
    }


def _cards(request, workspaces) -> list[dict]:
    workspaces = list(workspaces)
    acting = selectors.actionable_ids(request.user, workspaces)
    return [card(request, workspace, workspace.pk in acting) for workspace in workspaces]


@login_required
@never_cache
def dashboard(request):
    cards = _cards(request, selectors.dashboard_workspaces(request.user))
    customers = customers_to_choose(request.user)
    return render(
        request,
        "workspaces/dashboard.html",
        {
            "cards": cards,
            "usage": selectors.plan_usage(request.user),
            "customers": customers,
            "choose_customer": request.user.is_staff or len(customers) > 1,
            "show_customer": len({c["customer"] for c in cards}) > 1 or request.user.is_staff,
            "choose_owner": request.user.is_staff,
            "domain": settings.WORKSPACES_DOMAIN,
        },
    )


@login_required
@never_cache
@require_GET
def state(request):
    """The live state of every card: polled by the dashboard every ~2 s."""
    return JsonResponse(
        {
            "workspaces": _cards(request, selectors.dashboard_workspaces(request.user)),
            "usage": selectors.plan_usage(request.user),
        }
    )


@login_required
@never_cache
@require_GET
def card_fragment(request, pk: int):
    """One card's HTML, for a workspace that appeared since the page was loaded."""
    workspace = selectors.dashboard_workspaces(request.user).filter(pk=pk).first()
    if workspace is None:
        raise Http404("No such workspace.")
    return render(
        request,
        "workspaces/_card.html",
        {
            "card": _cards(request, [workspace])[0],
            "show_customer": request.GET.get("customer") == "1",
        },
    )
