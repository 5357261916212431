"""The wave engine: where a rollout goes from here (:func:`advance`), and what an update
job's end does (:func:`apply_update_result`).

:func:`advance` runs with the rollout's row locked (two workers never both start a VM), on
every tick of the beat task (``fleet.advance_rollouts``), after every update job ends, and
after start and resume. In order:

1. its soaking VMs are checked (whatever the rollout's status, so a halted or aborted
   rollout's last jobs still get their result): a high alert on the VM since its update
   started fails it; its heartbeat reporting the new version after the job ended starts its
   soak (``soak_until``); still healthy at ``soak_until`` it succeeded; unhealthy during the
   soak, or no such heartbeat within FLEET_ROLLOUT_HEALTH_TIMEOUT of the job's end, it failed;
2. more failed VMs than ``failure_limit`` halt the rollout (also while paused): nothing more
   starts, VMs not reached stay ``pending`` with the reason;
3. paused: nothing starts;
4. the current wave is the lowest one with a VM not done; its pending VMs start while fewer
   than ``max_unavailable`` VMs are updating. A VM in maintenance is skipped; a VM busy with
   another action (operate.busy_reason: a restart or rebuild under way, any job running on
   its node) is waited for, and skipped once it has waited FLEET_ROLLOUT_BUSY_WAIT seconds;
   a VM that already reports the version is skipped;
5. every VM done, failures within the limit: completed.

A wave's VMs are done once each succeeded (update job ok, healthy for the soak), failed or
was skipped, so the next wave starts only after the whole wave soaked.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.core.errors import PortalError
from portal.core.status import humane_duration
from portal.fleet.actions import operate
from portal.fleet.choices import RolloutStatus as R
from portal.fleet.choices import TargetStatus as T
from portal.fleet.choices import VMActionKind
from portal.fleet.models import VM, Rollout, RolloutTarget
from portal.fleet.selectors import ONLINE_LIVENESS, vm_version
from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.selectors import failure_message
from portal.monitoring.choices import Severity
from portal.monitoring.models import Alert, NodeLiveness

logger = logging.getLogger(__name__)

UPDATE_ACTION = "fleet.update"
OPEN = (T.PENDING, T.UPDATING, T.SOAKING)
DONE = (T.SUCCEEDED, T.FAILED, T.SKIPPED)
WATCHED = (R.IN_PROGRESS, R.PAUSED)


def advance(rollout_id: int) -> Rollout | None:
    with transaction.atomic():
        rollout = (
            Rollout.objects.select_for_update(of=("self",))
            .select_related("update")
            .filter(pk=rollout_id)
            .first()
        )
        if rollout is None:
            return None
        now = timezone.now()
        watch_soaking(rollout, now)
        if rollout.status not in WATCHED or halt_if_over_limit(rollout, now):
            return rollout
        if rollout.status == R.IN_PROGRESS:
            start_due(rollout, now)
    return rollout


# --- soaking VMs ----------------------------------------------------------------------------


def watch_soaking(rollout: Rollout, now: datetime) -> None:
    soaking = rollout.targets.filter(status=T.SOAKING).select_related("vm__node", "job")
    version = rollout.update.version
    for target in soaking:
        problem, healthy = health(target, version, now)
        if problem:
            finish_target(target, T.FAILED, problem, now, [T.SOAKING])
        elif not healthy:
            continue  # not back on the new version yet, still within time
        elif target.soak_until is None:
            soak_until = now + timedelta(seconds=rollout.soak_seconds)
            RolloutTarget.objects.filter(pk=target.pk).update(
                soak_until=soak_until,
                reason=f"reports {version}; soaking until {soak_until:%H:%M:%S}",
            )
            if rollout.soak_seconds == 0:
                finish_target(target, T.SUCCEEDED, "", now, [T.SOAKING])
        elif now >= target.soak_until:
            finish_target(target, T.SUCCEEDED, "", now, [T.SOAKING])


def health(target: RolloutTarget, version: str, now: datetime) -> tuple[str, bool]:
    """(why ``target`` failed, "" if it did not; whether it is healthy now). Failed: a new
    high alert, unhealthy during its soak, or not back with the new version in time."""
    since = target.started_at or target.created_at
    alert = (
        Alert.objects.filter(node_id=target.vm_id, severity=Severity.HIGH, created_at__gte=since)
        .order_by("created_at", "id")
        .first()
    )
    if alert is not None:
        return (
            f"high alert {alert.type} raised at {alert.created_at:%H:%M:%S}: {alert.message}",
            False,
        )
    ended = (target.job.finished_at if target.job else None) or since
    liveness = NodeLiveness.objects.filter(node_id=target.vm_id).first()
    why = unhealthy(liveness, version, ended)
    if not why:
        return "", True
    if target.soak_until is not None:
        return f"unhealthy during its soak: {why}", False
    timeout = settings.FLEET_ROLLOUT_HEALTH_TIMEOUT
    if now - ended > timedelta(seconds=timeout):
        return f"no heartbeat reporting {version} within {timeout} s of its update ({why})", False
    return "", False


def unhealthy(liveness: NodeLiveness | None, version: str, ended: datetime) -> str:
    """Why the VM's heartbeat does not (yet) show it back on ``version`` ("" if it does)."""
    if liveness is None or liveness.last_seen_at is None:
        return "no heartbeat at all"
    if liveness.status not in ONLINE_LIVENESS:
        return f"its heartbeat is {liveness.status} since {liveness.last_seen_at:%H:%M:%S}"
    if liveness.last_seen_at < ended:
        return f"no heartbeat since the update ended (last at {liveness.last_seen_at:%H:%M:%S})"
    if liveness.product_version != version:
        return f"it reports version {liveness.product_version or '(none)'}"
    return ""


def finish_target(
    target: RolloutTarget, status: str, reason: str, now: datetime, moving_from: tuple | list
) -> bool:
    """Guarded: only a target still in ``moving_from`` moves (a duplicate call is a no-op)."""
    return bool(
        RolloutTarget.objects.filter(pk=target.pk, status__in=moving_from).update(
            status=status, reason=reason, finished_at=now, waiting_since=None
        )
    )


# --- the failure limit and the end --------------------------------------------------------


def halt_if_over_limit(rollout: Rollout, now: datetime) -> bool:
    failed = list(rollout.targets.filter(status=T.FAILED).select_related("vm__node"))
    if len(failed) <= rollout.failure_limit:
        return False
    named = "; ".join(f"{target.vm}: {target.reason}" for target in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    rollout.move(
        R.HALTED,
        WATCHED,
        reason=f"{len(failed)} VM(s) failed, more than the failure limit of "
        f"{rollout.failure_limit}: {named}{more}",
        finished_at=now,
    )
    rollout.targets.filter(status=T.PENDING).update(
        reason="not started: the rollout halted", waiting_since=None
    )
    logger.warning("rollout %s halted: %s", rollout.pk, rollout.reason)
    return True


def complete(rollout: Rollout, now: datetime) -> None:
    counts: dict[str, int] = {str(status): 0 for status in DONE}
    for status in rollout.targets.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{counts[status]} {status}" for status in DONE)
    rollout.move(R.COMPLETED, [R.IN_PROGRESS], reason=summary, finished_at=now)


# --- starting VMs ---------------------------------------------------------------------------


def start_due(rollout: Rollout, now: datetime) -> None:
    """Start the current wave's pending VMs up to ``max_unavailable`` updating at once."""
    for _ in range(len(rollout.waves) + 2):  # a wave emptied by skips: on to the next one
        open_targets = rollout.targets.filter(status__in=OPEN)
        wave = min(open_targets.values_list("wave", flat=True), default=None)
        if wave is None:
            complete(rollout, now)
            return
        if wave != rollout.current_wave:
            Rollout.objects.filter(pk=rollout.pk).update(current_wave=wave)
            rollout.current_wave = wave
        updating = rollout.targets.filter(status=T.UPDATING).count()
        pending = open_targets.filter(wave=wave, status=T.PENDING).select_related("vm")
        for target in pending.order_by("pk"):
            if updating >= rollout.max_unavailable:
                return
            if start_target(rollout, target, now):
                updating += 1
            elif halt_if_over_limit(rollout, now):
                return
        if open_targets.filter(wave=wave).exists():
            return  # the wave is updating or soaking


def start_target(rollout: Rollout, target: RolloutTarget, now: datetime) -> bool:
    """Launch the VM's update job (True), or skip, fail or keep it waiting (False)."""
    vm = VM.objects.select_for_update(of=("self",)).select_related("node", "customer")
    vm = vm.get(pk=target.vm_id)
    version = rollout.update.version
    if vm.maintenance:
        note = f": {vm.maintenance_reason}" if vm.maintenance_reason else ""
        finish_target(target, T.SKIPPED, f"in maintenance{note}", now, [T.PENDING])
        return False
    busy = operate.busy_reason(vm)  # one action per VM, the rule restart and rebuild keep
    if busy:
        return wait_for(target, busy, now)
    current = vm_version(vm)
    if current == version:
        finish_target(target, T.SKIPPED, f"already reports {version}", now, [T.PENDING])
        return False
    try:
        job = launch_update(rollout, vm, target)
    except PortalError as exc:  # the node disabled or without a credential since
        finish_target(
            target, T.FAILED, f"cannot launch its update: {exc.message}", now, [T.PENDING]
        )
        return False
    RolloutTarget.objects.filter(pk=target.pk).update(
        status=T.UPDATING,
        job=job,
        started_at=now,
        previous_version=current,
        reason=f"updating (job {job.pk})",
        waiting_since=None,
    )
    return True


def wait_for(target: RolloutTarget, busy: str, now: datetime) -> bool:
    """The VM is busy with another action (operate.busy_reason): wait, up to a bound."""
    since = target.waiting_since or now
    bound = timedelta(seconds=settings.FLEET_ROLLOUT_BUSY_WAIT)
    if now - since >= bound:
        reason = f"skipped: busy for {humane_duration(bound)} ({busy})"
        finish_target(target, T.SKIPPED, reason, now, [T.PENDING])
        return False
    RolloutTarget.objects.filter(pk=target.pk, status=T.PENDING).update(
        waiting_since=since, reason=f"waiting: the VM is busy ({busy})"
    )
    return False


def launch_update(rollout: Rollout, vm: VM, target: RolloutTarget) -> Job:
    update = rollout.update
    return jobs.launch(
        playbook=update.playbook,
        action=UPDATE_ACTION,
        nodes=[vm.node],
        # The update's own variables, then the version (which they cannot override).
        extra_vars={**(update.extra_vars or {}), "fleet_update_version": update.version},
        target=target,
        customer=vm.customer,
        requested_by=rollout.created_by,
        timeout=settings.FLEET_UPDATE_TIMEOUT,
    )


# --- an update job's end ------------------------------------------------------------------


def apply_update_result(job: Job) -> None:
    """The job action's on_finish: the VM's last action, the target's result, advance."""
    target = RolloutTarget.objects.filter(job=job).select_related("rollout__update").first()
    for vm_id in job.nodes.values_list("pk", flat=True):
        record_vm_action(vm_id, job)
    if target is None:
        return
    now = timezone.now()
    if job.status == JobStatus.SUCCESSFUL:
        RolloutTarget.objects.filter(pk=target.pk, status=T.UPDATING).update(
            status=T.SOAKING,
            reason=f"updated by job {job.pk}; waiting for a heartbeat reporting "
            f"{target.rollout.update.version}",
        )
    else:
        reason = f"update job {job.pk} {job.status}: {failure_message(job)}"
        finish_target(target, T.FAILED, reason, now, [T.UPDATING])
    advance(target.rollout_id)


def record_vm_action(vm_id: int, job: Job) -> None:
    """vm.last_action = this job, unless a later action of the VM was recorded already."""
    VM.objects.filter(pk=vm_id).filter(
        Q(last_action__isnull=True) | Q(last_action_id__lte=job.pk)
    ).update(
        last_action=job,
        last_action_kind=VMActionKind.UPDATE,
        last_action_failed=job.status != JobStatus.SUCCESSFUL,
    )


def advance_all() -> int:
    """The beat's pass: every rollout that may move (running, paused, or with VMs soaking)."""
    ids = (
        Rollout.objects.filter(Q(status__in=WATCHED) | Q(targets__status=T.SOAKING))
        .values_list("pk", flat=True)
        .distinct()
    )
    count = 0
    for rollout_id in list(ids):
        try:
            advance(rollout_id)
            count += 1
        except Exception:  # one rollout's trouble does not stop the others
            logger.exception("advancing rollout %s failed", rollout_id)
    return count
