"""Celery tasks: thin. Each calls one action; nothing in the app imports this module.

Route confirmation has no task of its own: the beat's tick makes one pass every 5 s
(``CELERY_BEAT_SCHEDULE["workspaces-tick"]``), so no worker sleeps waiting for Traefik.
"""

from celery import shared_task

from portal.workspaces import actions


@shared_task(name="workspaces.tick", ignore_result=True)
def tick() -> dict:
    """Start creates whose run never started; one pass of route confirmation."""
    return actions.tick()
