"""The workspaces' figures on the admin home (registered with portal.jobs.dashboard)."""

from typing import Any

from django.db.models import Count

from portal.workspaces.choices import WorkspaceStatus
from portal.workspaces.models import Workspace
from portal.workspaces.notify import refusals_last_day


def workspaces_by_status() -> list[tuple[str, str, int]]:
    counts = dict(
        Workspace.objects.exclude(status=WorkspaceStatus.DELETED)
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return [
        (status.value, status.label, counts[status.value])
        for status in WorkspaceStatus
        if counts.get(status.value)
    ]


def admin_home_figures() -> dict[str, Any]:
    workspaces = workspaces_by_status()
    return {
        "workspaces": workspaces,
        "workspaces_total": sum(count for _, _, count in workspaces),
        # creates refused for want of a node or port in the last 24 hours
        "creates_refused": refusals_last_day(),
    }
