"""Celery tasks: thin. Load by id, call one action; retries and limits live here."""

import time

from celery import shared_task
from django.conf import settings

from portal.workspaces import actions, confirm


@shared_task(name="workspaces.tick", ignore_result=True)
def tick() -> dict:
    return actions.tick()


@shared_task(name="workspaces.confirm_routes", ignore_result=True)
def confirm_routes() -> None:
    """Poll Traefik until every published route is confirmed (or timed out)."""
    deadline = time.monotonic() + settings.WORKSPACE_ROUTE_TIMEOUT + 5
    while time.monotonic() < deadline:
        confirm.confirm_routes()
        if not confirm.pending_confirmation():
            return
        time.sleep(0.5)
