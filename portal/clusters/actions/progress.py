"""Where a run goes once its nodes have moved: on to the formation, or to its end.

:func:`settle_run` is called after every move that may end a node's part (ready, a failure,
a join's result, a deadline) and decides, with the run's row locked, so two workers settling
the same run never both launch the formation:

| the run's nodes                                   | the run                              |
|---------------------------------------------------|--------------------------------------|
| any still moving (requested … registered, joining) | waits                               |
| all ready (or already clustered), none failed     | cluster_form.yml launched, nodes joining |
| all clustered                                     | clustered                            |
| none moving, some timed out                       | timeout (ready nodes are not joined) |
| none moving, some failed, none timed out          | error                                |

The run's own deadline (the sweep, :func:`run_timed_out`) ends every node still moving as
``timeout``; a running formation is canceled. Nodes already ready stay ready: they were
reprovisioned, and are not joined to a cluster that cannot be formed whole.
"""

from __future__ import annotations

import logging
from contextlib import suppress

from django.db import transaction

from portal.clusters.actions import launch
from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import NODE_ACTIVE, NodeReprovision, ReprovisionRun
from portal.core.errors import PortalError
from portal.jobs import actions as jobs
from portal.jobs.models import Job

logger = logging.getLogger(__name__)


def settle_run(run_id: int) -> ReprovisionRun | None:
    with transaction.atomic():
        run = ReprovisionRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not run.is_active:
            return run
        node_runs = list(run.node_runs.select_related("cluster_node__node"))
        statuses = [nr.status for nr in node_runs]
        if any(status in NODE_ACTIVE for status in statuses):
            return run
        if all(status == N.CLUSTERED for status in statuses):
            run.move(R.CLUSTERED, reason=f"{len(statuses)} node(s) clustered")
        elif all(status in (N.READY, N.CLUSTERED) for status in statuses):
            _form(run, node_runs)
        else:
            _end(run, node_runs)
    return run


def _form(run: ReprovisionRun, node_runs: list[NodeReprovision]) -> None:
    ready = [nr for nr in node_runs if nr.status == N.READY]
    try:
        with transaction.atomic():  # the job and the moves, or neither
            job = launch.launch_form(run)
            for nr in ready:
                nr.move(
                    N.JOINING,
                    [N.READY],
                    reason=f"cluster_form.yml: job {job.pk}",
                    job=job,
                    current_job=job,
                )
            ReprovisionRun.objects.filter(pk=run.pk).update(form_job=job)
    except PortalError as exc:  # a node disabled or without a credential since
        for nr in ready:
            nr.move(N.ERROR, [N.READY], reason=f"cannot form the cluster: {exc.message}")
        _end(run, node_runs)
        return
    if run.status == R.REQUESTED:
        run.move(R.RUNNING, [R.REQUESTED], reason="forming the cluster")


def _end(run: ReprovisionRun, node_runs: list[NodeReprovision]) -> None:
    for nr in node_runs:
        nr.refresh_from_db()
    failed = [nr for nr in node_runs if nr.status in (N.TIMEOUT, N.ERROR)]
    canceled = [nr for nr in node_runs if nr.status == N.CANCELED]
    if not failed and canceled:
        run.move(R.CANCELED, reason="every node canceled")
        return
    summary = "; ".join(f"{nr.cluster_node.node.name}: {nr.status} ({nr.reason})" for nr in failed)
    left = [nr.cluster_node.node.name for nr in node_runs if nr.status == N.READY]
    if left:
        summary += f"; not joined: {', '.join(left)}"
    to = R.TIMEOUT if any(nr.status == N.TIMEOUT for nr in failed) else R.ERROR
    run.move(to, reason=f"the cluster was not formed: {summary}")


def end_open_nodes(run: ReprovisionRun, to: str, reason: str, by: object = None) -> int:
    """Move every node of the run still moving to ``to`` (timeout, canceled), and cancel
    the jobs acting on them (a readiness check, the formation). Returns how many moved."""
    moved = 0
    for nr in run.node_runs.filter(status__in=NODE_ACTIVE):
        status = nr.status
        if nr.move(to, [status], reason=f"{reason} (in {status})", by=by):
            moved += 1
            _cancel(nr.current_job)
    return moved


def _cancel(job: Job | None) -> None:
    if job is None or job.is_terminal:
        return
    with suppress(PortalError):  # it ended meanwhile
        jobs.cancel(job)


def run_timed_out(run: ReprovisionRun, from_status: str) -> None:
    """The sweep moved the run to timeout: its nodes still moving time out with it."""
    moved = end_open_nodes(run, N.TIMEOUT, "the run's deadline passed")
    logger.warning("reprovision run %s timed out (%s nodes ended)", run.pk, moved)


def node_timed_out(node_run: NodeReprovision, from_status: str) -> None:
    """The sweep moved a node to timeout: stop what acted on it, settle its run."""
    _cancel(node_run.current_job)
    settle_run(node_run.run_id)
