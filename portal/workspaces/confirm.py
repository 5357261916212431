"""The last step of start/create and the first of delete: Traefik's route, confirmed.

A workspace whose code-server answered is published (``route_wanted``); it becomes
``running`` only when Traefik's API lists its router. A deleting workspace is unpublished
first; its delete job starts once Traefik no longer lists the router. Without
``TRAEFIK_API_URL`` (development) nothing is confirmed and both happen at once.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.core.errors import PortalError
from portal.workspaces import routing
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)

confirmation_enabled = routing.confirmation_enabled


def awaiting_route():
    return Workspace.objects.filter(route_wanted=True, current_job__isnull=True,
                                    status__in=[S.PROVISIONING, S.STOPPED])


def awaiting_removal():
    return Workspace.objects.filter(route_wanted=False, current_job__isnull=True,
                                    status=S.DELETING)


def confirm_routes(now=None) -> dict:
    """One pass: promote workspaces whose route is live, start deletes whose route is gone,
    fail those Traefik did not pick up in time. Safe to run concurrently."""
    now = now or timezone.now()
    counts = {"running": 0, "unrouted": 0, "route_failed": 0}
    if not (awaiting_route().exists() or awaiting_removal().exists()):
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


def _timed_out_any(now) -> bool:
    deadline = now - timedelta(seconds=settings.WORKSPACE_ROUTE_TIMEOUT)
    return (awaiting_route().filter(route_wanted_since__lt=deadline).exists()
            or awaiting_removal().filter(route_wanted_since__lt=deadline).exists())


def _is_live(workspace, live) -> bool:
    if not confirmation_enabled():
        return True
    return live is not None and routing.router_name(workspace) in live


def _confirm_up(workspace: Workspace, live, deadline):
    if _is_live(workspace, live):
        moved = workspace.move(S.RUNNING, [S.PROVISIONING, S.STOPPED],
                               message=f"running at {workspace.url}")
        return "running" if moved else None
    if workspace.route_wanted_since and workspace.route_wanted_since < deadline:
        return _route_never_appeared(workspace)
    return None


def _route_never_appeared(workspace: Workspace):
    from portal.workspaces import actions

    message = (f"Traefik did not show the route {routing.router_name(workspace)} within "
               f"{settings.WORKSPACE_ROUTE_TIMEOUT:.0f} s")
    if workspace.status == S.STOPPED:  # a start: the customer's files stay; stop it again
        workspace.move(S.FAILED, [S.STOPPED], route_wanted=False, message=message)
        return "route_failed"
    try:
        with transaction.atomic():  # a create: undo it
            if not workspace.move(S.FAILED, [S.PROVISIONING], route_wanted=False,
                                  message=f"{message}; rolling back"):
                return None
            actions.launch_delete([workspace], action=actions.ROLLBACK)
    except PortalError as refused:
        workspace.move(S.FAILED, [S.PROVISIONING], route_wanted=False,
                       message=f"{message}; rollback could not start: {refused.message}")
    return "route_failed"


def _confirm_down(workspace: Workspace, live, deadline):
    from portal.workspaces import actions

    gone = not confirmation_enabled() or (
        live is not None and routing.router_name(workspace) not in live)
    late = workspace.route_wanted_since and workspace.route_wanted_since < deadline
    if not (gone or late):
        return None
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().filter(
            pk=workspace.pk, current_job__isnull=True, status=S.DELETING).first()
        if locked is None:
            return None  # another pass launched it
        locked.node = workspace.node
        try:
            with transaction.atomic():
                actions.launch_delete([locked])
        except PortalError as refused:  # e.g. the node was disabled meanwhile
            locked.move(S.FAILED, [S.DELETING], message=f"delete could not start: "
                        f"{refused.message}; delete again to retry")
    return "unrouted"


def pending_confirmation() -> bool:
    return awaiting_route().exists() or awaiting_removal().exists()


def schedule() -> None:
    """Confirm now when nothing is to be confirmed with Traefik, else in the background."""
    if not confirmation_enabled():
        confirm_routes()
        return
    from portal.workspaces import tasks

    transaction.on_commit(lambda: tasks.confirm_routes.delay())
