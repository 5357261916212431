"""Reads about workspaces: the customer pages (cards, usage against the plan), the API."""

from django.db.models import Count, Q, Sum
from django.template.defaultfilters import filesizeformat

from portal.accounts.models import Customer
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Node
from portal.workspaces.choices import WorkspaceStatus
from portal.workspaces.models import Workspace


def dashboard_workspaces(user):
    """The workspaces ``user`` sees on the dashboard (not deleted), newest first."""
    return (
        Workspace.objects.visible_to(user)
        .live()
        .select_related("customer", "owner", "node", "current_job")
        .order_by("-created_at", "-id")
    )


def actionable_ids(user, workspaces) -> set[int]:
    """Which of ``workspaces`` ``user`` may act on (start, stop, delete, ...)."""
    return set(
        Workspace.objects.filter(pk__in=[w.pk for w in workspaces])
        .actionable_by(user)
        .values_list("pk", flat=True)
    )


def may_act_on(user, workspace: Workspace) -> bool:
    return Workspace.objects.filter(pk=workspace.pk).actionable_by(user).exists()


def plan_usage(user) -> list[dict]:
    """Per customer the user is a member of (an admin's view of every customer is the
    admin's): workspaces used of the plan's limit ("3 of 5 workspaces"), the plan's quota
    per workspace, and the disk measured across its workspaces."""
    if not (user and user.is_authenticated):
        return []
    live = ~Q(workspaces__status=WorkspaceStatus.DELETED)
    customers = (
        Customer.objects.filter(memberships__user=user)
        .select_related("plan")
        .annotate(
            used=Count("workspaces", filter=live, distinct=True),
            disk_used=Sum("workspaces__quota_used_bytes", filter=live),
        )
        .order_by("name")[:50]
    )
    rows = []
    for customer in customers:
        plan = customer.plan
        limit = plan.workspace_limit
        rows.append(
            {
                "customer_id": customer.pk,
                "customer": customer.name,
                "plan": plan.name,
                "used": customer.used,
                "limit": limit,
                "full": customer.used >= limit,
                "text": f"{customer.used} of {limit} workspace{'s' if limit != 1 else ''}",
                "disk_quota_gb": plan.disk_quota_gb,
                "disk_used_bytes": customer.disk_used or 0,
                "disk_used_text": f"{filesizeformat(customer.disk_used or 0)} used",
            }
        )
    return rows


def workspace_nodes():
    """The nodes new workspaces may go to: the enabled workspace hosts."""
    return Node.objects.filter(purpose=NodePurpose.WORKSPACE_HOST, enabled=True)
