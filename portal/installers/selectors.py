"""Reads of installations: who sees which, and the rows the API, the admin and the pages list.

Operators and admins see every installation; anyone else sees those of their customers
(``Installation.customer``). Nodes have no customer until [fleet], so no customer can act on
a node yet and installations made by operators carry none: customers see empty lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

from portal.core.tenancy import is_operator
from portal.installers.models import Installation, InstallationEvent
from portal.jobs.models import Job

if TYPE_CHECKING:
    from portal.core.tenancy import AnyUser


def installations_for(user: AnyUser) -> QuerySet[Installation]:
    rows = Installation.objects.select_related("node", "requested_by", "current_job", "customer")
    if is_operator(user):
        return rows.all()
    return rows.visible_to(user)


def with_history(rows: QuerySet[Installation]) -> QuerySet[Installation]:
    """Each installation's history (newest first) and jobs, in two queries for the page."""
    return rows.prefetch_related(
        Prefetch("history", queryset=InstallationEvent.objects.select_related("by", "job")),
        Prefetch("jobs", queryset=Job.objects.order_by("-created_at", "-id")),
    )


def may_act(user: AnyUser) -> bool:
    """Installing, reinstalling, upgrading, retrying, uninstalling: operators and admins.
    A customer would need to own the nodes, and nodes have no owner until [fleet]."""
    return is_operator(user)
