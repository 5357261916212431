"""Reads of installations: who sees which, and the rows the API, the admin and the pages list.

Operators and admins see every installation; anyone else sees those of their customers
(``Installation.customer``). Nodes have no customer until [fleet], so no customer can act on
a node yet and installations made by operators carry none: customers see empty lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import (
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KT

from portal.core.tenancy import is_operator
from portal.installers.actions.run import RUN
from portal.installers.choices import InstallationStatus as S
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


# --- figures (/metrics and the admin home) ---------------------------------------------------

# How an install run ended, from the history: every move out of "installing" (a reinstall,
# upgrade or retry is a run too; the engine's retries within one run are not).
SUCCESS = S.INSTALLED
FAILURE_TYPES = ("rejected", "needs_operator", "failed_timeout", "failed")
QUEUED = (S.PENDING, S.INSTALLING, S.UNINSTALLING)
TIMEOUT_EXIT = 124


def _ended_runs(since: datetime | None = None) -> QuerySet[InstallationEvent]:
    ended = InstallationEvent.objects.filter(from_status=S.INSTALLING).exclude(status=S.INSTALLING)
    return ended.filter(at__gte=since) if since is not None else ended


def run_outcomes(since: datetime | None = None) -> dict[str, dict[str, int]]:
    """{installer: {"installed" | failure type: count}} of install runs that ended. A
    failure's type: rejected (exit 1 or preflight), needs_operator (exit 3), failed_timeout
    (exit 124), failed (the rest). Rows recorded before events kept the exit code are
    known by their reason ("exit 124 (timed out)...", as results.py writes it)."""
    timed_out = Q(status=S.FAILED) & (
        Q(exit_code=TIMEOUT_EXIT)
        | Q(exit_code__isnull=True, reason__startswith=f"exit {TIMEOUT_EXIT} ")
    )
    rows = (
        _ended_runs(since)
        .annotate(
            installer=F("installation__installer_id"),
            kind=Case(
                When(timed_out, then=Value("failed_timeout")),
                default=F("status"),
                output_field=CharField(),
            ),
        )
        .values_list("installer", "kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    outcomes: dict[str, dict[str, int]] = {}
    for installer, kind, count in rows:
        counts = outcomes.setdefault(installer, {SUCCESS: 0, **dict.fromkeys(FAILURE_TYPES, 0)})
        counts[kind if kind in counts else "failed"] += count
    return outcomes


def run_seconds(since: datetime | None = None) -> dict[str, tuple[int, float]]:
    """{installer: (finished runs, total seconds)} from the installers' jobs (started to
    finished, retries each counted as a job)."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    jobs = Job.objects.filter(action=RUN, started_at__isnull=False, finished_at__isnull=False)
    if since is not None:
        jobs = jobs.filter(finished_at__gte=since)
    rows = (
        jobs.annotate(installer=KT("extra_vars__installer_run_id"))
        .values("installer")
        .annotate(n=Count("pk"), total=Sum(duration))
        .order_by()
    )
    return {
        row["installer"]: (row["n"], row["total"].total_seconds() if row["total"] else 0.0)
        for row in rows
        if row["installer"]
    }


def queue_depth() -> dict[str, int]:
    """Installations waiting for or in a run, by status."""
    counts = dict(
        Installation.objects.filter(status__in=QUEUED)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {status: counts.get(status, 0) for status in QUEUED}
