"""The steps of a restart or rebuild after its request (portal/fleet/actions/operate.py):
the re-image, one look at each waiting operation (SSH on the new image, the agent install,
the heartbeat), what each job's end does, and how an operation ends (the VM's last action).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from portal.clusters.power import PowerError, PowerTarget, get_driver
from portal.core.errors import PortalError
from portal.fleet.choices import OperationStatus as O
from portal.fleet.choices import VMActionKind
from portal.fleet.models import VM, VMOperation
from portal.jobs import actions as jobs
from portal.jobs.choices import TERMINAL as JOB_TERMINAL
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.selectors import stats_data
from portal.monitoring import actions as monitoring
from portal.monitoring.models import NodeLiveness
from portal.nodes import actions as node_actions

logger = logging.getLogger(__name__)

# A rebuild's agent install that finds the fresh system unreachable is run again.
AGENT_INSTALL_ATTEMPTS = 3


def power_target(vm: VM) -> PowerTarget:
    return PowerTarget(
        node=vm.node.name,
        mac="",
        address=vm.power_address,
        username=vm.power_username,
        password=vm.power_password,
        options=dict(vm.power_options or {}),
    )


# --- the steps ------------------------------------------------------------------------------


def _load(operation_id: int) -> VMOperation | None:
    return (
        VMOperation.objects.select_related("vm__node", "job", "agent_job", "requested_by")
        .filter(pk=operation_id)
        .first()
    )


def do_reimage(operation_id: int) -> VMOperation | None:
    """reimaging -> booting, or failed with the driver's reason (the task's one call)."""
    operation = _load(operation_id)
    if operation is None or operation.status != O.REIMAGING:
        return operation  # ended meanwhile (timed out), or a duplicate message
    vm = operation.vm
    try:
        get_driver(vm.power_driver).reimage(power_target(vm))
    except (PowerError, ValueError) as exc:
        reason = getattr(exc, "reason", str(exc))
        fail(operation, f"re-image ({vm.power_driver}) failed: {reason}", [O.REIMAGING])
        return operation
    operation.move(
        O.BOOTING, [O.REIMAGING], reason=f"re-imaged ({vm.power_driver}); waiting for SSH"
    )
    advance(operation)  # the test-host driver returns once the host is up: no tick lost
    return operation


def advance(operation: VMOperation) -> None:
    """One look at an operation that waits: SSH on the new image, the agent install, the
    heartbeat. Its deadline is the status sweep's (operation_timed_out)."""
    if operation.status == O.BOOTING:
        _after_boot(operation)
    elif operation.status == O.INSTALLING_AGENT:
        _after_agent_install(operation)
    elif operation.status == O.AWAITING_HEARTBEAT:
        _after_heartbeat(operation)


def advance_operations() -> int:
    """The beat's pass over every waiting operation; returns how many it looked at."""
    waiting = VMOperation.objects.filter(
        status__in=[O.BOOTING, O.INSTALLING_AGENT, O.AWAITING_HEARTBEAT]
    ).select_related("vm__node", "job", "agent_job", "requested_by")
    count = 0
    for operation in waiting:
        try:
            advance(operation)
        except Exception:  # one VM's problem must not stop the others' progress
            logger.exception("fleet operation %s could not advance", operation.pk)
        count += 1
    return count


def _ssh_answers(node) -> bool:
    try:
        with socket.create_connection((node.address, node.ssh_port), timeout=2):
            return True
    except OSError:
        return False


def _after_boot(operation: VMOperation) -> None:
    """The new image answers: pin its host key (accepted by the rebuild's requester: the
    key change is the one this re-image made) and release the held rebuild job."""
    node, job_id = operation.vm.node, operation.job_id
    if job_id is None:
        fail(operation, "its job was deleted", [O.BOOTING])
        return
    if not _ssh_answers(node):
        return
    try:
        node_actions.do_accept_host_key(node, by=operation.requested_by)
    except PortalError as exc:  # not readable yet (sshd still starting): next pass
        logger.info("VM %s: new host key not readable yet: %s", node.name, exc.message)
        return
    with transaction.atomic():
        if not operation.move(
            O.RUNNING, [O.BOOTING], reason=f"new host key pinned; job {operation.job_id} runs"
        ):
            return
        Job.objects.filter(pk=job_id, status=JobStatus.PENDING).update(not_before=None)
        transaction.on_commit(lambda: jobs.dispatch(job_id))


def _after_agent_install(operation: VMOperation) -> None:
    job = operation.agent_job
    if job is None:
        fail(operation, "no agent install job", [O.INSTALLING_AGENT])
        return
    job.refresh_from_db(fields=["status", "reason"])
    if job.status not in JOB_TERMINAL:
        return
    if job.status != JobStatus.SUCCESSFUL:
        job.refresh_from_db(fields=["host_summary"])
        if jobs.unreachable_only(job) and _agent_attempts(operation) < AGENT_INSTALL_ATTEMPTS:
            _install_agent(operation, after=job)  # a fresh system may drop a connection
            return
        reason = f"agent install job {job.pk} {job.status}: {job.reason or 'see its events'}"
        fail(operation, reason, [O.INSTALLING_AGENT])
        return
    operation.move(
        O.AWAITING_HEARTBEAT,
        [O.INSTALLING_AGENT],
        reason=f"agent installed (job {job.pk}); waiting for its heartbeat",
    )
    _after_heartbeat(operation)


def heard_since(operation: VMOperation) -> bool:
    """Has the portal received a heartbeat since the operation began waiting for one? The
    job before the wait saw the new boot (restart: a new boot id; rebuild: the new image and
    then the agent's install with a new token), so a beat received after it comes from the
    new boot. (The uptime a beat reports cannot tell: a container reports its host's.)"""
    return NodeLiveness.objects.filter(
        node_id=operation.vm_id, last_seen_at__gt=operation.status_changed_at
    ).exists()


def _after_heartbeat(operation: VMOperation) -> None:
    if not heard_since(operation):
        return
    booted = operation.booted_at
    when = f" (booted {booted:%Y-%m-%d %H:%M:%S} UTC)" if booted else ""
    with transaction.atomic():
        if operation.move(
            O.SUCCEEDED,
            [O.AWAITING_HEARTBEAT],
            reason=f"heartbeat from the new boot received{when}",
            finished_at=timezone.now(),
        ):
            _record(operation, failed=False)


# --- ends -----------------------------------------------------------------------------------


def apply_job_result(job: Job) -> None:
    """on_finish of the restart and rebuild jobs: the next step, or the operation failed."""
    operation = _load_by_job(job)
    if operation is not None and operation.status in (O.REIMAGING, O.BOOTING):
        # The held rebuild job ended before it was released (canceled by someone).
        reason = f"job {job.pk} {job.status} before it ran: {job.reason or 'no reason'}"
        fail(operation, reason, [O.REIMAGING, O.BOOTING])
        return
    if operation is None or operation.status != O.RUNNING:
        return  # ended before its job (a failed re-image canceled the held job)
    if job.status != JobStatus.SUCCESSFUL:
        fail(operation, f"job {job.pk} {job.status}: {job.reason or 'see its events'}", [O.RUNNING])
        return
    booted = booted_at(job, operation)
    if operation.kind == VMActionKind.RESTART:
        operation.move(
            O.AWAITING_HEARTBEAT,
            [O.RUNNING],
            reason=f"rebooted (job {job.pk}); waiting for a heartbeat from the new boot",
            booted_at=booted,
        )
        _after_heartbeat(operation)
        return
    VMOperation.objects.filter(pk=operation.pk).update(booted_at=booted)
    _install_agent(operation)


def booted_at(job: Job, operation: VMOperation) -> datetime | None:
    """The new boot's time the job reported (set_stats ``fleet_restart``/``fleet_rebuild``:
    {host: {"booted_at": epoch seconds}}), or None."""
    stats = stats_data(job).get(f"fleet_{operation.kind}") or {}
    reported = (stats.get(operation.vm.node.name) or {}).get("booted_at")
    if reported is None:
        return None
    try:
        return datetime.fromtimestamp(float(reported), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _load_by_job(job: Job) -> VMOperation | None:
    return VMOperation.objects.select_related("vm__node", "requested_by").filter(job=job).first()


def _install_agent(operation: VMOperation, after: Job | None = None) -> None:
    """The rebuilt VM's agent: monitoring's own install (a new token), at its old interval.
    ``after``: an install that found the VM unreachable, retried (DESIGN: fleet retries)."""
    node = operation.vm.node
    interval = (
        NodeLiveness.objects.filter(node=node).values_list("interval_seconds", flat=True).first()
    )
    source = [O.INSTALLING_AGENT] if after is not None else [O.RUNNING]
    try:
        with transaction.atomic():
            agent_job = monitoring.do_install_agent(
                node, interval=interval, by=operation.requested_by
            )
            again = f" again (job {after.pk} found it unreachable)" if after else ""
            operation.move(
                O.INSTALLING_AGENT,
                source,
                reason=f"installing the monitoring agent{again} (job {agent_job.pk})",
                agent_job=agent_job,
            )
    except PortalError as exc:
        fail(operation, f"cannot install the agent: {exc.message}", source)


def _agent_attempts(operation: VMOperation) -> int:
    return Job.objects.filter(
        action=monitoring.INSTALL_AGENT,
        target_id=str(operation.vm_id),
        created_at__gte=operation.created_at,
    ).count()


def fail(operation: VMOperation, reason: str, allowed_from: Sequence[str]) -> bool:
    with transaction.atomic():
        if not operation.move(O.FAILED, allowed_from, reason=reason, finished_at=timezone.now()):
            return False
        _record(operation, failed=True)
    _cancel_held_job(operation, reason)
    logger.warning("VM %s: %s failed: %s", operation.vm, operation.kind, reason)
    return True


def operation_timed_out(operation: VMOperation, from_status: str) -> None:
    """The sweep moved it to failed at its step's deadline (the reason says which)."""
    VMOperation.objects.filter(pk=operation.pk).update(finished_at=timezone.now())
    _record(operation, failed=True)
    _cancel_held_job(operation, operation.reason)


def _cancel_held_job(operation: VMOperation, reason: str) -> None:
    if operation.job_id is None:
        return
    job = Job.objects.filter(pk=operation.job_id, status=JobStatus.PENDING).first()
    if job is not None and job.cancel_before_start(f"rebuild ended before it ran: {reason}"):
        jobs.finalize(job)


def _record(operation: VMOperation, failed: bool) -> None:
    """The VM's last action, unless a later action of the VM was recorded already."""
    VM.objects.filter(pk=operation.vm_id, last_action_id=operation.job_id).update(
        last_action_kind=operation.kind, last_action_failed=failed
    )
