"""Route confirmation: the last step of create and start, the first of delete.

A workspace whose code-server answered is published (``route_wanted``, set by the result
handler); it becomes ``running`` only when Traefik's API lists its router. A deleting
workspace is unpublished first; its delete run starts once Traefik no longer lists the
router. A route Traefik does not show (or drop) within ``WORKSPACE_ROUTE_TIMEOUT`` fails the
workspace: a create is rolled back, a start is left failed (the customer's files stay), a
delete starts anyway.

:func:`confirm_routes` is ONE pass over what waits for Traefik; nothing here sleeps. The beat
makes a pass every tick (``workspaces.tick`` in tasks.py, every 5 s). Without
``TRAEFIK_API_URL`` (development) there is nothing to wait for: the result handler makes the
pass at once (:func:`confirm_at_once_without_traefik`).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.core.errors import PortalError
from portal.workspaces import routing
from portal.workspaces.actions.runs import ROLLBACK, launch_delete
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)

confirmation_enabled = routing.confirmation_enabled


def awaiting_route():
    return Workspace.objects.filter(
        route_wanted=True, current_job__isnull=True, status__in=[S.PROVISIONING, S.STOPPED]
    )


def awaiting_removal():
    return Workspace.objects.filter(route_wanted=False, current_job__isnull=True, status=S.DELETING)


def pending_confirmation() -> bool:
    return awaiting_route().exists() or awaiting_removal().exists()


def confirm_routes(now=None) -> dict:
    """One pass: promote workspaces whose route is live, start deletes whose route is gone,
    fail those Traefik did not pick up in time. Safe to run concurrently."""
    now = now or timezone.now()
    counts = {"running": 0, "unrouted": 0, "route_failed": 0}
    if not pending_confirmation():
        return counts
    live = None
    if confirmation_enabled():
        try:
            live = routing.live_routers()
        except routing.TraefikUnavailable as error:
            logger.warning("%s", error)
            live = None
            if not _timed_out_any(now):
                return counts
    deadline = now - timedelta(seconds=settings.WORKSPACE_ROUTE_TIMEOUT)
    outcomes = [_confirm_up(workspace, live, deadline) for workspace in awaiting_route()]
    outcomes += [_confirm_down(workspace, live, deadline) for workspace in awaiting_removal()]
    for outcome in filter(None, outcomes):
        counts[outcome] += 1
    return counts


def confirm_at_once_without_traefik() -> None:
    """After a route was published: without Traefik's API a route counts as live, so make
    the pass now; with it, the beat's next tick makes it."""
    if not confirmation_enabled():
        confirm_routes()


def _timed_out_any(now) -> bool:
    deadline = now - timedelta(seconds=settings.WORKSPACE_ROUTE_TIMEOUT)
    return (
        awaiting_route().filter(route_wanted_since__lt=deadline).exists()
        or awaiting_removal().filter(route_wanted_since__lt=deadline).exists()
    )


def _is_live(workspace, live) -> bool:
    if not confirmation_enabled():
        return True
    return live is not None and routing.router_name(workspace) in live


def _confirm_up(workspace: Workspace, live, deadline):
    if _is_live(workspace, live):
        moved = workspace.move(
            S.RUNNING, [S.PROVISIONING, S.STOPPED], message=f"running at {workspace.url}"
        )
        return "running" if moved else None
    if workspace.route_wanted_since and workspace.route_wanted_since < deadline:
        return _route_never_appeared(workspace)
    return None


def _route_never_appeared(workspace: Workspace):
    message = (
        f"Traefik did not show the route {routing.router_name(workspace)} within "
        f"{settings.WORKSPACE_ROUTE_TIMEOUT:.0f} s"
    )
    if workspace.status == S.STOPPED:  # a start: the customer's files stay; stop it again
        workspace.move(S.FAILED, [S.STOPPED], route_wanted=False, message=message)
        return "route_failed"
    try:
        with transaction.atomic():  # a create: undo it
            if not workspace.move(
                S.FAILED, [S.PROVISIONING], route_wanted=False, message=f"{message}; rolling back"
            ):
                return None
            launch_delete([workspace], action=ROLLBACK)
    except PortalError as refused:
        workspace.move(
            S.FAILED,
            [S.PROVISIONING],
            route_wanted=False,
            message=f"{message}; rollback could not start: {refused.message}",
        )
    return "route_failed"


def _confirm_down(workspace: Workspace, live, deadline):
    gone = not confirmation_enabled() or (
        live is not None and routing.router_name(workspace) not in live
    )
    late = workspace.route_wanted_since and workspace.route_wanted_since < deadline
    if not (gone or late):
        return None
    with transaction.atomic():
        locked = (
            Workspace.objects.select_for_update()
            .filter(pk=workspace.pk, current_job__isnull=True, status=S.DELETING)
            .first()
        )
        if locked is None:
            return None  # another pass launched it
        locked.node = workspace.node
        try:
            with transaction.atomic():
                launch_delete([locked])
        except PortalError as refused:  # e.g. the node was disabled meanwhile
            locked.move(
                S.FAILED,
                [S.DELETING],
                message=f"delete could not start: {refused.message}; delete again to retry",
            )
    return "unrouted"
