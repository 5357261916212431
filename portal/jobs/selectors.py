"""Reads about jobs that other apps need (they never query Job's events themselves)."""

from portal.jobs.models import Job


def failure_message(job: Job) -> str:
    """The last failed task's message, else the job's own reason, else its status."""
    failed = job.events.filter(failed=True).exclude(event="playbook_on_stats").order_by(
        "-counter").values_list("event_data", flat=True).first()
    message = ((failed or {}).get("res") or {}).get("msg") if failed else None
    return str(message or job.reason or f"the job ended {job.status}")[:1000]
