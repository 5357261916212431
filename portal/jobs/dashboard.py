"""Reads for the admin home: the numbers that matter and job outcomes over time.

The figures of the apps built on jobs (workspaces by status, labs active, refused creates)
come from the providers those apps register (:func:`register`): jobs imports none of them.
"""

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job

QUEUED = (JobStatus.PENDING, JobStatus.DISPATCHED)
BAD = frozenset(
    {JobStatus.FAILED, JobStatus.ERROR, JobStatus.TIMEOUT, JobStatus.LOST, JobStatus.REFUSED}
)
CHART_DAYS = 14
STEP = 5  # bar heights in steps of 5 % (classes h0 … h100 in portal/admin.css: no inline style)
_PROVIDERS: list[Callable[[], dict[str, Any]]] = []


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def job_numbers() -> dict[str, int]:
    today = start_of_today()
    return {
        "running": Job.objects.filter(status=JobStatus.RUNNING).count(),
        "failed_today": Job.objects.filter(status__in=BAD, finished_at__gte=today).count(),
        "queue_depth": Job.objects.filter(status__in=QUEUED).count(),
    }


def _height(count: int, top: int) -> int:
    if not count:
        return 0
    return max(STEP, round(count * 100 / top / STEP) * STEP)


def outcomes_by_day(days: int = CHART_DAYS) -> list[dict[str, Any]]:
    """One entry per day (oldest first): successful, bad (failed, error, timeout, lost,
    refused) and other (canceled) jobs by the day they finished, with bar heights."""
    first = timezone.localdate() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = (
        Job.objects.filter(finished_at__gte=since)
        .annotate(day=TruncDate("finished_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day", "status")
        .annotate(n=Count("pk"))
    )
    per_day = {first + timedelta(days=i): {"ok": 0, "bad": 0, "other": 0} for i in range(days)}
    for day, status, n in rows:
        if day not in per_day:
            continue
        kind = "ok" if status == JobStatus.SUCCESSFUL else "bad" if status in BAD else "other"
        per_day[day][kind] += n
    top = max([sum(c.values()) for c in per_day.values()] + [1])
    return [
        {
            "day": day,
            **counts,
            "total": sum(counts.values()),
            **{f"{kind}_height": _height(counts[kind], top) for kind in counts},
        }
        for day, counts in per_day.items()
    ]


def register(provider: Callable[[], dict[str, Any]]) -> None:
    """An app built on jobs adds its figures to the admin home (in its ``AppConfig.ready()``):
    ``provider()`` returns them by name, as the template reads them. Registering twice is a
    no-op."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def admin_home() -> dict[str, Any]:
    figures: dict[str, Any] = {**job_numbers(), "outcomes": outcomes_by_day()}
    for provider in _PROVIDERS:
        figures.update(provider())
    return figures
