"""Reads for the customer pages: usage against the plan."""

from django.db.models import Count, Q, Sum

from portal.accounts.models import Customer
from portal.workspaces.choices import WorkspaceStatus


def plan_usage(user) -> list[dict]:
    """Per customer the user sees: workspaces used of the plan's limit ("3 of 5 workspaces"),
    the per-workspace quota of the plan, and the disk measured across its workspaces."""
    live = ~Q(workspaces__status=WorkspaceStatus.DELETED)
    customers = (Customer.objects.visible_to(user).select_related("plan")
                 .annotate(used=Count("workspaces", filter=live, distinct=True),
                           disk_used=Sum("workspaces__quota_used_bytes", filter=live))
                 .order_by("name")[:50])
    rows = []
    for customer in customers:
        plan = customer.plan
        limit = plan.workspace_limit
        rows.append({
            "customer": customer.name,
            "plan": plan.name,
            "used": customer.used,
            "limit": limit,
            "full": customer.used >= limit,
            "text": f"{customer.used} of {limit} workspace{'s' if limit != 1 else ''}",
            "disk_quota_gb": plan.disk_quota_gb,
            "disk_used_bytes": customer.disk_used or 0,
        })
    return rows
