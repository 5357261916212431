"""Retention: old events and old ended jobs are deleted, in bounded batches, with raw SQL.

- Events of jobs that ended more than ``JOB_EVENTS_RETENTION_DAYS`` ago are deleted; the
  job's row (status, rc, reason, times, host summary, event count) stays: a summary
  outlives its events.
- Jobs that ended more than ``JOB_RETENTION_DAYS`` ago are deleted with whatever is left of
  their events and their links (``Job.nodes``, other models' many-to-many lists of jobs).
  A foreign key to a job declared ``SET_NULL`` is set to NULL first, as Django's own delete
  would; a job that a ``CASCADE``/``PROTECT``/other foreign key still points at is kept.
- Active jobs are never touched (only terminal statuses with a ``finished_at``). 0 days
  keeps forever.

Raw SQL rather than ``QuerySet.delete()``: the ORM's cascade loads every related row into
Python. A batch is ``JOB_PRUNE_BATCH`` jobs in its own transaction, at most
``JOB_PRUNE_MAX_BATCHES`` per run, oldest first (the ``finished_at`` index); the next run
(beat ``jobs.prune``, hourly) takes the rest. /metrics keeps counting deleted jobs (the
tally, portal/jobs/tally.py).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from portal.jobs.choices import TERMINAL
from portal.jobs.models import Job, JobEvent


@dataclass(frozen=True)
class Plan:
    events_before: datetime | None  # None: events kept forever
    jobs_before: datetime | None  # None: jobs kept forever
    batch: int
    max_batches: int


def plan(now: datetime | None = None) -> Plan:
    now = now or timezone.now()

    def cutoff(days: int) -> datetime | None:
        return now - timedelta(days=days) if days else None

    return Plan(
        events_before=cutoff(settings.JOB_EVENTS_RETENTION_DAYS),
        jobs_before=cutoff(settings.JOB_RETENTION_DAYS),
        batch=settings.JOB_PRUNE_BATCH,
        max_batches=settings.JOB_PRUNE_MAX_BATCHES,
    )


def prune(now: datetime | None = None) -> dict[str, int]:
    """Delete what retention allows, batch by batch. Returns what was deleted:
    ``{"jobs": …, "events": …, "event_jobs": …}`` (event_jobs: jobs whose events went)."""
    rules = plan(now)
    done = {"jobs": 0, "events": 0, "event_jobs": 0}
    batches = 0
    if rules.jobs_before is not None:
        while batches < rules.max_batches:
            ids = _old_jobs(rules.jobs_before, rules.batch)
            if not ids:
                break
            batches += 1
            jobs, events = _delete_jobs(ids, rules.jobs_before)
            done["jobs"] += jobs
            done["events"] += events
    if rules.events_before is not None:
        while batches < rules.max_batches:
            ids = _jobs_with_old_events(rules.events_before, rules.batch)
            if not ids:
                break
            batches += 1
            done["events"] += _delete_events(ids)
            done["event_jobs"] += len(ids)
    return done


def would_prune(now: datetime | None = None) -> dict[str, int]:
    """What :func:`prune` would delete if it had no batch limit (``--dry-run``): counts
    only, nothing deleted."""
    rules = plan(now)
    counts = {"jobs": 0, "events": 0, "event_jobs": 0}
    if rules.jobs_before is not None:
        old = _deletable(rules.jobs_before)
        counts["jobs"] = old.count()
        counts["events"] += JobEvent.objects.filter(job__in=old).count()
    if rules.events_before is not None:
        ended = Job.objects.filter(status__in=TERMINAL, finished_at__lt=rules.events_before)
        if rules.jobs_before is not None:
            ended = ended.exclude(pk__in=_deletable(rules.jobs_before))
        with_events = ended.filter(events__isnull=False).distinct()
        counts["event_jobs"] = with_events.count()
        counts["events"] += JobEvent.objects.filter(job__in=with_events).count()
    return counts


def events_deleted(job: Job, now: datetime | None = None) -> bool:
    """Whether retention has deleted, or may have deleted, the events of this ended job: it
    ended before the events' cutoff and had events. (Whether any are still stored is the
    caller's to see: a run takes a bounded number of batches.)"""
    cutoff, finished = plan(now).events_before, job.finished_at
    if cutoff is None or finished is None or job.status not in TERMINAL:
        return False
    return finished < cutoff and job.event_count > 0


def events_deleted_note(job: Job) -> str:
    """What a page showing a job without its events says when retention took them."""
    days = settings.JOB_EVENTS_RETENTION_DAYS
    return (
        f"Its {job.event_count} events were deleted by retention (events are kept "
        f"{days} days after a job ends: JOB_EVENTS_RETENTION_DAYS); the job's summary stays."
    )


# --- which jobs -----------------------------------------------------------------------------


def _ended_before(cutoff: datetime) -> "models.QuerySet[Job]":
    return Job._base_manager.filter(status__in=TERMINAL, finished_at__lt=cutoff)


def _deletable(cutoff: datetime) -> "models.QuerySet[Job]":
    """Ended before ``cutoff`` and needed by no row that would block or follow its delete."""
    jobs = _ended_before(cutoff)
    for field in _keeping_fields():
        needed = field.model._base_manager.filter(**{f"{field.name}__isnull": False})
        jobs = jobs.exclude(pk__in=needed.values(field.attname))
    return jobs


def _old_jobs(cutoff: datetime, batch: int) -> list[int]:
    return list(_deletable(cutoff).order_by("finished_at").values_list("pk", flat=True)[:batch])


def _jobs_with_old_events(cutoff: datetime, batch: int) -> list[int]:
    # Oldest first; a job whose events are already gone fails the EXISTS probe (one index
    # lookup), so a run reads the retained jobs' index, never the events table.
    has_events = JobEvent.objects.filter(job=models.OuterRef("pk"))
    jobs = _ended_before(cutoff).filter(models.Exists(has_events)).order_by("finished_at")
    return list(jobs.values_list("pk", flat=True)[:batch])


# --- the foreign keys pointing at Job -------------------------------------------------------


def _foreign_keys() -> Iterator[Any]:
    """Every concrete foreign key (or one-to-one) to Job but JobEvent.job, the job columns
    of many-to-many tables included (their through tables' foreign keys)."""
    seen = set()
    # include_hidden: relations named "+" (a workspace's current_job, the clusters' jobs)
    # and through tables' keys are not in related_objects, but block a raw DELETE as well.
    for relation in Job._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and relation.is_relation and not relation.concrete):
            continue
        if relation.many_to_many:
            continue  # its through table's foreign key is a relation of its own here
        field: Any = relation.remote_field
        key = (field.model._meta.db_table, field.column)
        if field.model is JobEvent or key in seen:
            continue
        seen.add(key)
        yield field


def _is_link(field: models.Field) -> bool:
    """A row of an auto-created many-to-many table: a list entry, deleted with the job."""
    return bool(field.model._meta.auto_created)


def _keeping_fields() -> list[Any]:
    """Foreign keys whose rows keep a job alive: neither SET_NULL nor a list link."""
    return [
        field
        for field in _foreign_keys()
        if not _is_link(field) and field.remote_field.on_delete is not models.SET_NULL
    ]


# --- deleting -------------------------------------------------------------------------------


def _delete_jobs(ids: list[int], cutoff: datetime) -> tuple[int, int]:
    with transaction.atomic():
        locked = _lock_still_deletable(ids, cutoff)
        if not locked:
            return 0, 0
        events = _delete_events(locked)
        for field in _foreign_keys():
            if _is_link(field):
                _execute("DELETE FROM {table} WHERE {column} IN ({ids})", field, locked)
            elif field.remote_field.on_delete is models.SET_NULL:
                _execute(
                    "UPDATE {table} SET {column} = NULL WHERE {column} IN ({ids})", field, locked
                )
        jobs = _execute_on(
            Job._meta.db_table, "id", "DELETE FROM {table} WHERE {column} IN ({ids})", locked
        )
    return jobs, events


def _lock_still_deletable(ids: list[int], cutoff: datetime) -> list[int]:
    """The batch again, under row locks: a job relaunched or newly referenced since the
    batch was chosen is left for a later run."""
    rows = _deletable(cutoff).filter(pk__in=ids)
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return list(rows.values_list("pk", flat=True))


def _delete_events(job_ids: list[int]) -> int:
    with transaction.atomic():
        return _execute_on(
            JobEvent._meta.db_table,
            "job_id",
            "DELETE FROM {table} WHERE {column} IN ({ids})",
            job_ids,
        )


def _execute(sql: str, field: Any, ids: list[int]) -> int:
    return _execute_on(field.model._meta.db_table, field.column, sql, ids)


def _execute_on(table: str, column: str, sql: str, ids: list[int]) -> int:
    quote = connection.ops.quote_name
    statement = sql.format(
        table=quote(table), column=quote(column), ids=", ".join(["%s"] * len(ids))
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, ids)
        return cursor.rowcount
