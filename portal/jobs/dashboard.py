"""Reads for the admin home: the numbers that matter and job outcomes over time."""

from datetime import datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job

QUEUED = (JobStatus.PENDING, JobStatus.DISPATCHED)
BAD = frozenset({JobStatus.FAILED, JobStatus.ERROR, JobStatus.TIMEOUT, JobStatus.LOST,
                 JobStatus.REFUSED})
CHART_DAYS = 14
STEP = 5  # bar heights in steps of 5 % (classes h0 … h100 in portal/admin.css: no inline style)


def start_of_today():
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def job_numbers() -> dict:
    today = start_of_today()
    return {
        "running": Job.objects.filter(status=JobStatus.RUNNING).count(),
        "failed_today": Job.objects.filter(status__in=BAD, finished_at__gte=today).count(),
        "queue_depth": Job.objects.filter(status__in=QUEUED).count(),
    }


def workspaces_by_status() -> list[tuple[str, str, int]]:
    from portal.workspaces.choices import WorkspaceStatus
    from portal.workspaces.models import Workspace

    counts = dict(Workspace.objects.exclude(status=WorkspaceStatus.DELETED)
                  .values_list("status").annotate(n=Count("pk")))
    return [(status.value, status.label, counts[status.value])
            for status in WorkspaceStatus if counts.get(status.value)]


def labs_active() -> int:
    from portal.labs.choices import SessionStatus
    from portal.labs.models import LabSession

    return LabSession.objects.filter(status=SessionStatus.ACTIVE).count()


def _height(count: int, top: int) -> int:
    if not count:
        return 0
    return max(STEP, round(count * 100 / top / STEP) * STEP)


def outcomes_by_day(days: int = CHART_DAYS) -> list[dict]:
    """One entry per day (oldest first): successful, bad (failed, error, timeout, lost,
    refused) and other (canceled) jobs by the day they finished, with bar heights."""
    first = timezone.localdate() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = (Job.objects.filter(finished_at__gte=since)
            .annotate(day=TruncDate("finished_at", tzinfo=timezone.get_current_timezone()))
            .values_list("day", "status").annotate(n=Count("pk")))
    per_day = {first + timedelta(days=i): {"ok": 0, "bad": 0, "other": 0} for i in range(days)}
    for day, status, n in rows:
        if day not in per_day:
            continue
        kind = "ok" if status == JobStatus.SUCCESSFUL else "bad" if status in BAD else "other"
        per_day[day][kind] += n
    top = max([sum(c.values()) for c in per_day.values()] + [1])
    return [{"day": day, **counts, "total": sum(counts.values()),
             **{f"{kind}_height": _height(counts[kind], top) for kind in counts}}
            for day, counts in per_day.items()]


def creates_refused_last_day() -> int:
    """Workspace creates refused for want of a node or port in the last 24 hours (the rows
    portal/workspaces/notify.py records)."""
    from portal.workspaces.notify import refusals_last_day

    return refusals_last_day()


def admin_home() -> dict:
    workspaces = workspaces_by_status()
    return {**job_numbers(), "workspaces": workspaces,
            "workspaces_total": sum(count for _, _, count in workspaces),
            "labs_active": labs_active(), "outcomes": outcomes_by_day(),
            "creates_refused": creates_refused_last_day()}
