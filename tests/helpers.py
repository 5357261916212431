"""Helpers shared by test modules."""

from django.utils import timezone

from portal.jobs import actions as jobs
from portal.jobs.models import Job


def run_due_jobs(max_rounds: int = 20, worker: str = "test") -> None:
    """Act as the worker: run every job that is due, oldest first, until none is due."""
    for _ in range(max_rounds):
        waiting = Job.objects.filter(status__in=["pending", "dispatched"]).order_by("id")
        due = [job for job in waiting if not job.not_before or job.not_before <= timezone.now()]
        if not due:
            return
        for job in due:
            jobs.execute(job.pk, job.signature, worker=worker)
