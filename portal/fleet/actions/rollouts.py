"""Updates and their rollouts: create an update, plan and start a rollout, pause, resume,
abort. Checks first (a PortalError names the field: 400, 409 for a clash with the state),
then the rows and the first jobs in one transaction. Where a rollout goes from there:
rollout_engine.py; how its VMs are cut into waves: waves.py.

Targets: every VM not already reporting the update's version (optionally only a tier, a
customer, or the VMs named), ordered starter, pro, enterprise, then by id, so the canary is
a starter VM. VMs in maintenance when the rollout is planned are recorded as skipped (wave
0); the others are cut into the waves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Customer
from portal.core.errors import Conflict, PortalError
from portal.core.status import TransitionNotAllowed
from portal.fleet.actions import rollout_engine
from portal.fleet.actions.waves import check_waves, plan_waves
from portal.fleet.choices import FleetTier
from portal.fleet.choices import RolloutStatus as R
from portal.fleet.choices import TargetStatus as T
from portal.fleet.models import VM, Rollout, RolloutTarget, Update
from portal.fleet.models.updates import DEFAULT_WAVES, version_validator
from portal.fleet.selectors import vm_version, vms_with_status
from portal.jobs import registry
from portal.jobs.actions import check_extra_vars
from portal.jobs.playbooks import resolve_playbook

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    AnyUser = User | AnonymousUser | None

ACTIVE = (R.PENDING, R.IN_PROGRESS, R.PAUSED)
TIER_ORDER: dict[str, int] = {FleetTier.STARTER: 0, FleetTier.PRO: 1, FleetTier.ENTERPRISE: 2}
MAX_VM_IDS = 10_000
LIMITS = {  # option: (default, lowest, highest)
    "soak_seconds": (300, 0, 7 * 24 * 3600),
    "failure_limit": (0, 0, 1_000_000),
    "max_unavailable": (1, 1, 10_000),
}


def register_job_actions() -> None:
    registry.register(
        registry.ActionSpec(
            name=rollout_engine.UPDATE_ACTION,
            playbook=None,  # an update names its playbook (default fleet_update.yml)
            on_finish=rollout_engine.apply_update_result,
            description="Install a product version on a fleet VM (one VM of a rollout).",
        )
    )


# --- updates ------------------------------------------------------------------------------


def create_update(
    user: AnyUser,
    *,
    version: Any = None,
    description: Any = "",
    playbook: Any = None,
    extra_vars: Any = None,
) -> Update:
    if not isinstance(version, str) or not version:
        raise PortalError("A version string is required.", field="version")
    try:
        version_validator(version)
    except ValidationError as exc:
        raise PortalError(exc.messages[0], field="version") from None
    if Update.objects.filter(version=version).exists():
        raise PortalError(f"Version {version} exists already.", field="version", code="unique")
    if not isinstance(description, str) or len(description) > 10_000:
        raise PortalError("A text of at most 10,000 characters.", field="description")
    playbook = playbook or "fleet_update.yml"
    if not isinstance(playbook, str) or len(playbook) > 100:
        raise PortalError("A playbook file name.", field="playbook")
    try:
        resolve_playbook(playbook)
    except PortalError as exc:
        raise PortalError(exc.message, field="playbook") from None
    extra_vars = check_extra_vars(extra_vars)
    created_by = user if user is not None and user.is_authenticated else None
    return Update.objects.create(
        version=version,
        description=description,
        playbook=playbook,
        extra_vars=extra_vars,
        created_by=created_by,
    )


# --- planning a rollout -------------------------------------------------------------------


def _whole(name: str, value: Any) -> int:
    default, low, high = LIMITS[name]
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise PortalError("A whole number.", field=name)
    if not low <= value <= high:
        raise PortalError(f"From {low} to {high}.", field=name)
    return value


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - {*LIMITS, "waves", "tier", "customer_id", "vm_ids", "start"})
    if unknown:
        raise PortalError(f"Unknown option {unknown[0]!r}.", field=unknown[0])
    waves = options.get("waves")
    checked: dict[str, Any] = {name: _whole(name, options.get(name)) for name in LIMITS}
    checked["waves"] = list(DEFAULT_WAVES) if waves is None else check_waves(waves)
    tier = options.get("tier")
    if tier is not None and tier not in FleetTier.values:
        raise PortalError(f"One of {', '.join(FleetTier.values)}.", field="tier")
    checked["tier"] = tier
    customer_id = options.get("customer_id")
    if customer_id is not None and (
        isinstance(customer_id, bool) or not isinstance(customer_id, int)
    ):
        raise PortalError("A customer id (a whole number).", field="customer_id")
    checked["customer_id"] = customer_id
    checked["vm_ids"] = _vm_ids(options.get("vm_ids"))
    start = options.get("start", True)
    if not isinstance(start, bool):
        raise PortalError("true or false.", field="start")
    checked["start"] = start
    return checked


def _vm_ids(value: Any) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_VM_IDS:
        raise PortalError(f"A list of 1 to {MAX_VM_IDS} VM ids.", field="vm_ids")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise PortalError("VM ids are whole numbers.", field="vm_ids")
    found = set(VM.objects.filter(pk__in=value).values_list("pk", flat=True))
    missing = [v for v in value if v not in found]
    if missing:
        raise PortalError(f"No VM {missing[0]}.", field="vm_ids", code="does_not_exist")
    return sorted(set(value))


def select_vms(update: Update, options: dict[str, Any]) -> list[VM]:
    """The VMs the rollout is for, in rollout order (none already on the version)."""
    rows = vms_with_status(VM.objects.select_related("node", "customer"))
    if options["tier"]:
        rows = rows.filter(tier=options["tier"])
    if options["customer_id"] is not None:
        if not Customer.objects.filter(pk=options["customer_id"]).exists():
            raise PortalError(f"No customer {options['customer_id']}.", field="customer_id")
        rows = rows.filter(customer_id=options["customer_id"])
    if options["vm_ids"] is not None:
        rows = rows.filter(pk__in=options["vm_ids"])
    # `version` is the annotation of vms_with_status (django-stubs cannot see it).
    vms = list(rows.exclude(version=update.version))  # type: ignore[misc]
    return sorted(vms, key=lambda vm: (TIER_ORDER.get(str(vm.tier), 9), vm.pk))


def check_not_in_other_rollout(vms: list[VM]) -> None:
    clash = (
        RolloutTarget.objects.filter(
            vm__in=[vm.pk for vm in vms], status__in=rollout_engine.OPEN, rollout__status__in=ACTIVE
        )
        .select_related("rollout__update", "vm__node")
        .first()
    )
    if clash is not None:
        raise Conflict(
            f"VM {clash.vm} is in rollout {clash.rollout_id} of {clash.rollout.update.version} "
            f"({clash.rollout.status}); abort it or wait for it to end.",
            field="vm_ids",
            code="busy",
        )


def plan_rollout(user: AnyUser, update: Update, options: dict[str, Any] | None = None) -> Rollout:
    """Check the options, choose and plan the targets; start it unless ``start`` is false
    (a pending rollout shows its plan and is started later)."""
    checked = check_options(dict(options or {}))
    vms = select_vms(update, checked)
    if not vms:
        raise PortalError(
            f"No VM to update: every selected VM already reports {update.version} (or none "
            "matches).",
            field="vm_ids" if checked["vm_ids"] else "tier" if checked["tier"] else "update",
            code="no_targets",
        )
    check_not_in_other_rollout(vms)
    ready = [vm for vm in vms if not vm.maintenance]
    plan = plan_waves(ready, checked["waves"])
    with transaction.atomic():
        rollout = Rollout.objects.create(
            update=update,
            waves=checked["waves"],
            soak_seconds=checked["soak_seconds"],
            failure_limit=checked["failure_limit"],
            max_unavailable=checked["max_unavailable"],
            selection={k: checked[k] for k in ("tier", "customer_id", "vm_ids") if checked[k]},
            created_by=user if user is not None and user.is_authenticated else None,
        )
        RolloutTarget.objects.bulk_create(_targets(rollout, plan, vms))
        if checked["start"]:
            start_rollout(rollout)
    rollout.refresh_from_db()
    return rollout


def _targets(rollout: Rollout, plan: list[list[VM]], vms: list[VM]) -> list[RolloutTarget]:
    rows = [
        RolloutTarget(rollout=rollout, vm=vm, wave=number, previous_version=vm_version(vm))
        for number, wave in enumerate(plan, start=1)
        for vm in wave
    ]
    now = timezone.now()
    for vm in vms:
        if vm.maintenance:
            note = f": {vm.maintenance_reason}" if vm.maintenance_reason else ""
            rows.append(
                RolloutTarget(
                    rollout=rollout,
                    vm=vm,
                    wave=0,
                    status=T.SKIPPED,
                    previous_version=vm_version(vm),
                    reason=f"in maintenance{note}",
                    finished_at=now,
                )
            )
    return rows


# --- moves --------------------------------------------------------------------------------


def _move(rollout: Rollout, to: str, allowed: tuple[str, ...], **fields: Any) -> None:
    """The guarded move, or 409 naming the status the rollout is really in."""
    if not rollout.move(to, allowed, **fields):
        rollout.refresh_from_db()
        raise TransitionNotAllowed(rollout, [rollout.status], to)


def start_rollout(rollout: Rollout) -> Rollout:
    """pending -> in_progress (409 otherwise); its first wave starts at once."""
    with transaction.atomic():
        _move(rollout, R.IN_PROGRESS, (R.PENDING,), reason="", started_at=timezone.now())
        return rollout_engine.advance(rollout.pk) or rollout


def pause_rollout(rollout: Rollout, by: object = None) -> Rollout:
    """in_progress -> paused: no VM starts; jobs running finish and their VMs are watched."""
    _move(rollout, R.PAUSED, (R.IN_PROGRESS,), reason=f"paused by {by}" if by else "paused")
    return rollout


def resume_rollout(rollout: Rollout) -> Rollout:
    """paused -> in_progress, then on where it stopped (a failure limit reached meanwhile
    halts it)."""
    with transaction.atomic():
        _move(rollout, R.IN_PROGRESS, (R.PAUSED,), reason="")
        return rollout_engine.advance(rollout.pk) or rollout


def abort_rollout(rollout: Rollout, by: object = None) -> Rollout:
    """pending, in_progress or paused -> aborted: no VM starts any more (those not reached
    are skipped); jobs running finish and their result is recorded."""
    now = timezone.now()
    with transaction.atomic():
        _move(
            rollout,
            R.ABORTED,
            ACTIVE,
            reason=f"aborted by {by}" if by else "aborted",
            finished_at=now,
        )
        rollout.targets.filter(status=T.PENDING).update(
            status=T.SKIPPED, reason="not started: the rollout was aborted", finished_at=now
        )
    return rollout
