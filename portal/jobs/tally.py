"""The tally of ended jobs: what /metrics reports about history without reading it.

Each terminal move adds one to its (status, playbook, duration bucket) row in the same
transaction (``Job._end`` → :func:`count_end`), with one ``INSERT … ON CONFLICT DO UPDATE``
(PostgreSQL and SQLite alike). A scrape then reads at most statuses x playbooks x buckets
rows. The counts are cumulative: retention deletes old jobs, never their counts.
:func:`rebuild` derives the tally from the jobs still stored (the data migration that
introduced it; the bench after a bulk fill).
"""

from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
    When,
)

from portal.jobs.choices import TERMINAL

DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)  # seconds
OVER = 2**31 - 1  # ran longer than the last bucket (only in +Inf)
NOT_RUN = -1  # never started (canceled or refused before a worker claimed it)


def bucket(duration: timedelta | None) -> int:
    """The ``le_seconds`` a job of this run time is counted under."""
    if duration is None:
        return NOT_RUN
    seconds = duration.total_seconds()
    return next((b for b in DURATION_BUCKETS if seconds <= b), OVER)


def count_end(job: Any, tally_model: Any) -> None:
    """Count one ended job (call in the transaction of its terminal move). The models come
    as arguments: portal/jobs/models.py calls this module, never the other way round."""
    duration = job.duration
    add(tally_model, job.status, job.playbook, bucket(duration), 1, _seconds(duration))


def add(
    model: Any, status: str, playbook: str, le_seconds: int, count: int, seconds: float
) -> None:
    """Add to one tally row, creating it if needed; concurrent adds never lose a count."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (status, playbook, le_seconds, count, seconds) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (status, playbook, le_seconds) "
            f"DO UPDATE SET count = {table}.count + excluded.count, "
            f"seconds = {table}.seconds + excluded.seconds",
            [status, playbook, le_seconds, count, seconds],
        )


def rebuild(job_model: Any, tally_model: Any) -> int:
    """Replace the tally by the counts of the ended jobs stored now (one grouped scan).
    Takes the models as arguments so a migration can pass its historical ones."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (
        job_model._base_manager.filter(status__in=TERMINAL)
        .annotate(d=duration)
        .annotate(le=_bucket_expression())
        .values("status", "playbook", "le")
        .annotate(n=Count("id"), total=Sum("d"))
        .order_by()
    )
    with transaction.atomic():
        tally_model._base_manager.all().delete()
        tally_model._base_manager.bulk_create(
            tally_model(
                status=row["status"],
                playbook=row["playbook"],
                le_seconds=row["le"],
                count=row["n"],
                seconds=_seconds(row["total"]) if row["le"] != NOT_RUN else 0.0,
            )
            for row in rows
        )
    return tally_model._base_manager.count()


def _bucket_expression() -> Case:
    never_ran = Q(started_at__isnull=True) | Q(finished_at__isnull=True)
    whens = [When(never_ran, then=Value(NOT_RUN))]
    whens += [When(d__lte=timedelta(seconds=b), then=Value(b)) for b in DURATION_BUCKETS]
    return Case(*whens, default=Value(OVER))


def _seconds(duration: timedelta | None) -> float:
    return duration.total_seconds() if duration else 0.0
