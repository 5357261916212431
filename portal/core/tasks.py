"""Celery tasks: thin. Load by id, call one action; retries and limits live here."""

from celery import shared_task

from portal.core import status


@shared_task(name="core.expire_statuses", ignore_result=True)
def expire_statuses() -> int:
    """Every model on portal.core.status.StatusModel: overdue rows to their timeout status."""
    return sum(status.expire_statuses().values())
