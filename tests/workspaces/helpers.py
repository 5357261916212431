"""Finish a job as the worker would, with the per-workspace results a playbook reports."""

from django.utils import timezone

from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent


def finish_job(
    job: Job,
    results: dict | None,
    status: str = JobStatus.SUCCESSFUL,
    reason: str = "",
    host_summary: dict | None = None,
) -> Job:
    """Record the stats event carrying ``workspace_results``, end the job, run its handler."""
    counter = job.events.count() + 1
    if results is not None:
        JobEvent.objects.create(
            job=job,
            counter=counter,
            event="playbook_on_stats",
            uuid=f"stats-{job.pk}",
            created=timezone.now(),
            event_data={"artifact_data": {"workspace_results": results}},
        )
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    job.refresh_from_db()
    job.finish(
        status,
        rc=0 if status == JobStatus.SUCCESSFUL else 2,
        reason=reason,
        host_summary=host_summary or {},
        event_count=counter,
    )
    job.refresh_from_db()
    jobs.finalize(job)
    return job
