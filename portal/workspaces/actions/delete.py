"""Delete: the route goes first, then one delete run per node and customer; force delete.

A delete while a job acts on the workspace (including provisioning) is refused with 409: the
customer deletes it once the job is over. A workspace with nothing on its node (pending, or
rolled back) is deleted at once. The others are unpublished from Traefik; their delete run
starts once Traefik no longer lists the route (routes.py), at once without Traefik's API.
"""

import contextlib
import logging

from django.db import transaction
from django.utils import timezone

from portal.core.errors import Conflict, PortalError
from portal.core.tenancy import is_admin
from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.workspaces import routing
from portal.workspaces.actions.runs import group_by_run, launch_delete
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)


def check_deletable(workspace: Workspace) -> None:
    if workspace.status == S.DELETING and workspace.status_reason:
        raise Conflict(
            f"The workspace is already deleting ({workspace.status_reason}).",
            field="status",
            code="invalid_state",
        )
    if workspace.status in (S.DELETING, S.DELETED):
        raise Conflict(
            f"The workspace is already {workspace.status}.", field="status", code="invalid_state"
        )
    if workspace.busy or workspace.status == S.PROVISIONING:
        raise Conflict(
            "A job is acting on the workspace (provisioning, start, stop …); "
            "delete it when that job is done.",
            field="status",
            code="busy",
        )


def do_delete(workspace: Workspace, *, by=None) -> Workspace:
    return do_delete_many([workspace], by=by)[0]


def do_delete_many(workspaces, *, by=None) -> list[Workspace]:
    """Delete workspaces: those with nothing on their node at once, the others by one
    delete run per node and customer, each after Traefik dropped its route."""
    deleted = []
    for group in group_by_run(workspaces):
        with transaction.atomic():
            locked = list(
                Workspace.objects.select_for_update(of=("self",))
                .select_related("node", "customer", "current_job")
                .filter(pk__in=[w.pk for w in group])
                .order_by("pk")
            )
            for workspace in locked:
                check_deletable(workspace)
            on_node = [w for w in locked if w.on_node]
            for workspace in locked:
                if not workspace.on_node:  # pending, or rolled back: nothing on the node
                    workspace.move(
                        S.DELETED,
                        [workspace.status],
                        message="deleted",
                        by=by,
                        port=None,
                        route_wanted=False,
                        deleted_at=timezone.now(),
                    )
                else:  # the route goes first: the delete run starts once Traefik dropped it
                    workspace.move(
                        S.DELETING,
                        [workspace.status],
                        by=by,
                        route_wanted=False,
                        route_wanted_since=timezone.now(),
                        message="removing the route, then the workspace from its node",
                    )
            if on_node and not routing.confirmation_enabled():
                launch_delete(on_node, by=by)  # a refusal (node disabled) undoes the moves
        deleted += locked
    return deleted


# --- force delete (admins) ------------------------------------------------------------------


class Forbidden(PortalError):
    status_code = 403
    code = "permission_denied"


def check_force_delete(workspace: Workspace, by) -> None:
    if not is_admin(by):
        raise Forbidden("Only an admin may force a delete.", field="force")
    if workspace.status == S.DELETED:
        raise Conflict("The workspace is already deleted.", field="status", code="invalid_state")
    job = workspace.current_job
    if job is not None and job.status == JobStatus.RUNNING:
        raise Conflict(
            f"Job {job.pk} is running on the workspace; cancel it or wait for it "
            "to end, then force the delete.",
            field="status",
            code="busy",
        )


def do_force_delete(workspace: Workspace, *, by=None) -> Workspace:
    """An admin's way out when a node cannot be reached (or cleaned): the workspace is
    deleted in the portal without a job, its port and name are free again, and the history
    says what the node may still hold. A job still waiting to act on it (a retry) is
    canceled."""
    with transaction.atomic():
        workspace = (
            Workspace.objects.select_for_update(of=("self",))
            .select_related("node", "current_job")
            .get(pk=workspace.pk)
        )
        check_force_delete(workspace, by)
        waiting = workspace.current_job if workspace.busy else None
        node = workspace.node
        where = f"{node.name}:{workspace.port}" if workspace.port else node.name
        leftovers = (
            f"; the node may still hold leftovers ({where}: unit "
            f"{workspace.unit_name}, user {workspace.linux_username}, home "
            f"{node.workspace_root}/{workspace.slug}): clean it by hand or with "
            "workspace_delete.yml"
            if workspace.on_node
            else "; nothing of it was on the node"
        )
        workspace.move(
            S.DELETED,
            [workspace.status],
            by=by,
            job=waiting,
            message=f"delete forced by {by}{leftovers}",
            port=None,
            on_node=False,
            route_wanted=False,
            current_job=None,
            health={},
            deleted_at=timezone.now(),
        )
        if waiting is not None:
            transaction.on_commit(lambda: _cancel_quietly(waiting, by))
    logger.warning(
        "workspace %s deleted by force", workspace.slug, extra={"object_id": workspace.pk}
    )
    return workspace


def _cancel_quietly(job: Job, by) -> None:
    # A job that ended meanwhile is left as it is: its handler finds no workspace to act on.
    with contextlib.suppress(PortalError):
        jobs.cancel(job, by=by)
