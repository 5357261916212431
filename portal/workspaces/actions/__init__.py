"""Workspaces' actions: every change of a workspace. Every change on a node is a job.

Imports go one way: models, choices, selectors, routing, naming, notify -> actions -> tasks,
api, views, admin (import-linter's contracts in pyproject.toml). Inside this package:
results -> routes, operate, delete -> create -> runs. Nothing here imports tasks.py, and no
import hides inside a function. The public names are re-exported here: ``actions.do_create``.

    runs.py      a run: one job for workspaces of one node and one customer. The job action
                 names, launch_for, launch_delete (also a create's rollback), what a run
                 reported (workspace_results), whether it reached its node (never_reached)
    create.py    checks, node and port, do_create, provision_pending (one create run)
    operate.py   start/stop/restart/status/logs/resize, a plan change, rename
    delete.py    delete (the route first, then the node), force delete
    routes.py    route confirmation, one pass per beat tick: running once Traefik lists it
    results.py   what a finished job does to its workspaces; the registry of job actions

A create fails halfway (3 files, in order):
    create.py   do_create: the row, ``pending``, its port held; on commit provision_pending
                launches one ``workspaces.create`` run for the node and customer
    runs.py     launch_for: the job (portal/jobs runs it, then calls the handler below)
    results.py  apply_create_result, per workspace, by its item in runs.workspace_results:
                ok -> _host_ready (the route is wanted: see "a route is confirmed");
                the item failed, the playbook undid it -> _item_failed: ``failed``, port free;
                no item, and runs.never_reached (only unreachable, nothing done on the
                node) -> _never_reached: ``failed``, port free; no item otherwise (the run
                failed, was lost, canceled, timed out) -> _roll_back: ``failed``, "rolling
                back", runs.launch_delete(ROLLBACK); then _start_next_run (creates that
                queued meanwhile: create.provision_pending)
    results.py  apply_rollback_result: "rolled back", port free; or "rollback failed": the
                port stays, a delete cleans up

The node is unreachable (a retry):
    portal/jobs/actions.py  finalize -> _maybe_retry: the RetryPolicy given in
                            results.register_job_actions relaunches the run (not_before)
    results.py              note_waiting_for_node: "waiting for node …; retrying at …"
    (the last attempt ends) results.apply_create_result as above: runs.never_reached ->
                            _never_reached, the workspace ``failed`` with the reason

A route is confirmed (3 files, in order):
    results.py  _host_ready (after a create) or apply_control_result (after a start):
                route_wanted; Traefik's HTTP provider now serves the route
                (routing.traefik_configuration); routes.confirm_at_once_without_traefik
    tasks.py    ``workspaces.tick``, every 5 s on the beat -> tick() below
    routes.py   confirm_routes, one pass: _confirm_up moves the workspace to ``running``
                once routing.live_routers (Traefik's API) lists ``ws-<slug>``; past
                WORKSPACE_ROUTE_TIMEOUT _route_never_appeared fails it and rolls a create
                back (runs.launch_delete(ROLLBACK) -> results.apply_rollback_result). For a
                delete, _confirm_down starts the delete run once the route is gone.
"""

from portal.workspaces.actions.create import (
    TOLD_TRY_LATER,
    do_create,
    provision_pending,
    provision_stalled,
    resolve_creator,
)
from portal.workspaces.actions.delete import (
    Forbidden,
    check_deletable,
    do_delete,
    do_delete_many,
    do_force_delete,
)
from portal.workspaces.actions.operate import check_operation, do_change_plan, do_operate, do_rename
from portal.workspaces.actions.results import register_job_actions
from portal.workspaces.actions.routes import confirm_routes
from portal.workspaces.actions.runs import (
    CONTROL,
    CREATE,
    DELETE,
    RESIZE,
    ROLLBACK,
    launch_delete,
)
from portal.workspaces.selectors import workspace_nodes


def tick() -> dict:
    """The beat's pass (tasks.tick): start the runs of creates whose run never started (a
    crash between commit and launch), and one pass of route confirmation."""
    return {"started": provision_stalled(), **confirm_routes()}


__all__ = [
    "CONTROL",
    "CREATE",
    "DELETE",
    "RESIZE",
    "ROLLBACK",
    "TOLD_TRY_LATER",
    "Forbidden",
    "check_deletable",
    "check_operation",
    "confirm_routes",
    "do_change_plan",
    "do_create",
    "do_delete",
    "do_delete_many",
    "do_force_delete",
    "do_operate",
    "do_rename",
    "launch_delete",
    "provision_pending",
    "register_job_actions",
    "resolve_creator",
    "tick",
    "workspace_nodes",
]
