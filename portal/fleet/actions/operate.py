"""Restart and rebuild of a fleet VM: checks (4xx) first, then the operation row and its job.

Restart: the ``fleet.restart`` job reboots the VM (playbooks/fleet_restart.yml, Ansible's
reboot module, which returns once the VM answers again); then the operation waits for a
heartbeat from the new boot (``awaiting_heartbeat``).

Rebuild: the VM's power driver re-images it (portal.clusters.power, a Celery task), the
operation waits until SSH answers on the new image and pins the new host key (the re-image
was ordered by this operation, so the requester's order is what accepts the key, recorded as
an accepted pin with their name), releases the ``fleet.rebuild`` job held since the request
(playbooks/fleet_rebuild.yml: the new image is reachable with that key), installs the
monitoring agent again (portal.monitoring's own install action, a new token), then waits for
a heartbeat from the new boot. The VM keeps its id, node, customer and address.

The steps after the request are in operate_steps.py. Nothing sleeps: each waiting step is
one pass of :func:`advance_operations` (beat every 5 s), bounded by the step's deadline,
which the status sweep enforces (core.expire_statuses -> :func:`operation_timed_out`). The
VM records the action's job and its outcome (``last_action``, ``last_action_kind``,
``last_action_failed``) when the operation ends.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.clusters.power import PowerError, get_driver
from portal.core.errors import Conflict, PortalError
from portal.fleet.actions.operate_steps import (
    advance_operations,
    apply_job_result,
    do_reimage,
    operation_timed_out,
)
from portal.fleet.choices import OperationStatus as O
from portal.fleet.choices import VMActionKind
from portal.fleet.models import VM, VMOperation
from portal.fleet.models.operations import ACTIVE_OPERATION
from portal.jobs import actions as jobs
from portal.jobs import registry
from portal.jobs.choices import ACTIVE as JOB_ACTIVE
from portal.jobs.models import Job
from portal.monitoring.models import NodeLiveness

logger = logging.getLogger(__name__)

RESTART, RESTART_PLAYBOOK = "fleet.restart", "fleet_restart.yml"
REBUILD, REBUILD_PLAYBOOK = "fleet.rebuild", "fleet_rebuild.yml"
REBUILD_JOB_TIMEOUT = 600


def register_job_actions() -> None:
    registry.register(
        registry.ActionSpec(
            name=RESTART,
            playbook=RESTART_PLAYBOOK,
            on_finish=apply_job_result,
            description="Restart a fleet VM (reboot; its heartbeat is awaited after the job)",
        )
    )
    registry.register(
        registry.ActionSpec(
            name=REBUILD,
            playbook=REBUILD_PLAYBOOK,
            on_finish=apply_job_result,
            description="Rebuild a fleet VM: its re-imaged system answers with its new key",
        )
    )
    VMOperation.on_timed_out.handler = operation_timed_out


# --- checks ---------------------------------------------------------------------------------


def busy_reason(vm: VM) -> str:
    """Why the VM cannot take another action now ('' when it can): an operation under way,
    or any job active on its node (a restart, rebuild, update, agent install, ...)."""
    operation = VMOperation.objects.filter(vm=vm, status__in=ACTIVE_OPERATION).first()
    if operation is not None:
        which = f" (job {operation.job_id})" if operation.job_id else ""
        return f"its {operation.kind}{which} is {operation.get_status_display().lower()}"
    running = Job.objects.filter(nodes=vm.node_id, status__in=JOB_ACTIVE).order_by("pk").first()
    if running is not None:
        return f"job {running.pk} ({running.action}) is {running.status}"
    return ""


def check_idle(vm: VM) -> None:
    reason = busy_reason(vm)
    if reason:
        raise Conflict(
            f"VM {vm} is busy: {reason}; try again when it is done.", field="status", code="busy"
        )


def check_has_agent(vm: VM) -> None:
    """A restart is confirmed by the agent's heartbeat: a VM without an agent cannot be."""
    has_agent = NodeLiveness.objects.filter(node_id=vm.pk).filter(
        ~Q(token_hash="") | ~Q(next_token_hash="") | Q(last_seen_at__isnull=False)
    )
    if not has_agent.exists():
        raise Conflict(
            f"VM {vm} has no monitoring agent, whose heartbeat confirms a restart: install it "
            "first (or rebuild the VM, which installs it).",
            field="agent",
            code="no_agent",
        )


def check_rebuildable(vm: VM) -> None:
    """A rebuild needs a power driver that can be called (known, with valid options)."""
    if not vm.power_driver:
        raise Conflict(
            f"VM {vm} has no power driver: it cannot be re-imaged (set one in the admin).",
            field="power_driver",
            code="no_power_driver",
        )
    try:
        get_driver(vm.power_driver).check_options(vm.power_options)
    except PowerError as exc:
        raise PortalError(exc.reason, field="power_driver") from None
    except ValueError as exc:
        raise PortalError(f"VM {vm}: {exc}", field="power_options") from None


def _locked(vm: VM) -> VM:
    """The VM row locked for the checks: of two clicks, one operation."""
    return (
        VM.objects.select_for_update(of=("self",)).select_related("node", "customer").get(pk=vm.pk)
    )


# --- restart and rebuild --------------------------------------------------------------------


@transaction.atomic
def restart_vm(vm: VM, by: Any = None) -> Job:
    vm = _locked(vm)
    check_idle(vm)
    check_has_agent(vm)
    job = jobs.launch(
        playbook=RESTART_PLAYBOOK,
        action=RESTART,
        nodes=[vm.node],
        extra_vars={"fleet_restart_reboot_timeout": settings.FLEET_REBOOT_TIMEOUT},
        target=vm,
        customer=vm.customer,
        requested_by=by,
        timeout=settings.FLEET_REBOOT_TIMEOUT + 300,
        # The reboot module is silent while the VM is down (its own bound ends it first).
        idle_timeout=max(settings.JOB_IDLE_TIMEOUT, settings.FLEET_REBOOT_TIMEOUT + 60),
    )
    _start(vm, VMActionKind.RESTART, O.RUNNING, job, by, f"reboot (job {job.pk})")
    return job


@transaction.atomic
def rebuild_vm(vm: VM, by: Any = None) -> Job:
    """The job is created now (the answer names it) and held until the new image answers."""
    vm = _locked(vm)
    check_idle(vm)
    check_rebuildable(vm)
    hold = settings.FLEET_REIMAGE_TIMEOUT + settings.FLEET_BOOT_TIMEOUT + 60
    job = jobs.launch(
        playbook=REBUILD_PLAYBOOK,
        action=REBUILD,
        nodes=[vm.node],
        target=vm,
        customer=vm.customer,
        requested_by=by,
        timeout=REBUILD_JOB_TIMEOUT,
        # Released by the operation; the pending-job sweep leaves it alone until then.
        not_before=timezone.now() + timedelta(seconds=hold),
        enqueue=False,
    )
    operation = _start(vm, VMActionKind.REBUILD, O.REIMAGING, job, by, "re-image requested")
    operation_id = operation.pk
    transaction.on_commit(lambda: _enqueue_reimage(operation_id))
    return job


def _start(vm: VM, kind: str, status: str, job: Job, by: Any, reason: str) -> VMOperation:
    operation = VMOperation(
        vm=vm,
        kind=kind,
        status=status,
        reason=reason,
        job=job,
        requested_by=by if by is not None and by.pk else None,
        status_changed_at=timezone.now(),
    )
    operation.status_expires = _deadline(operation, status)  # as a move would set it
    operation.save(force_insert=True)
    VM.objects.filter(pk=vm.pk).update(last_action=job, last_action_kind=kind)
    logger.info("VM %s: %s requested (job %s)", vm, kind, job.pk)
    return operation


def _deadline(operation: VMOperation, status: str):
    timeout = operation.status_timeout(status)
    return timezone.now() + timeout if timeout else None


def _enqueue_reimage(operation_id: int) -> None:
    from portal.fleet.tasks import reimage_vm

    reimage_vm.apply_async(args=(operation_id,))


__all__ = [
    "advance_operations",
    "busy_reason",
    "do_reimage",
    "rebuild_vm",
    "register_job_actions",
    "restart_vm",
]
