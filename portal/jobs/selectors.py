"""Reads about jobs that other apps need (they never query Job's events themselves)."""

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, QuerySet

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent


def failure_message(job: Job) -> str:
    """The last failed task's message, else the job's own reason, else its status."""
    failed = (
        job.events.filter(failed=True)
        .exclude(event="playbook_on_stats")
        .order_by("-counter")
        .values_list("event_data", flat=True)
        .first()
    )
    message = ((failed or {}).get("res") or {}).get("msg") if failed else None
    return str(message or job.reason or f"the job ended {job.status}")[:1000]


def jobs_of(target: Model) -> QuerySet[Job]:
    """The jobs launched for ``target`` (a workspace, a lab session, ...)."""
    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(type(target)), target_id=str(target.pk)
    )


def stats_data(job: Job) -> dict[str, Any]:
    """What the playbook reported with ``set_stats`` (the stats event's artifact data)."""
    stats = job.events.filter(event="playbook_on_stats").values_list("event_data", flat=True)
    return (stats.first() or {}).get("artifact_data") or {}


def events_after(job: Job, after: int | None = None) -> QuerySet[JobEvent]:
    """The job's events in order (after the counter ``after``, when given)."""
    events = job.events.order_by("counter")
    return events if after is None else events.filter(counter__gt=after)


def first_events(job: Job, fields: tuple[str, ...], limit: int) -> list[tuple[Any, ...]]:
    """``fields`` of the job's first ``limit`` events, in order."""
    return list(job.events.order_by("counter").values_list(*fields)[:limit])


def tasks_in_last_success(job: Job, **extra_vars: object) -> int:
    """How many tasks the last successful run of the same playbook and action started
    (other than ``job``; with these extra vars, when given); 0 when none ran."""
    runs = Job.objects.filter(
        playbook=job.playbook, action=job.action, status=JobStatus.SUCCESSFUL
    ).exclude(pk=job.pk)
    if extra_vars:
        runs = runs.filter(**{f"extra_vars__{name}": value for name, value in extra_vars.items()})
    last = runs.order_by("-finished_at").values_list("pk", flat=True).first()
    if not last:
        return 0
    return JobEvent.objects.filter(job_id=last, event="playbook_on_task_start").count()


def may_change(job: Job, user: Any) -> bool:
    """Is ``user`` an owner of the job's customer (or an admin)?"""
    return Job.objects.filter(pk=job.pk).changeable_by(user).exists()
