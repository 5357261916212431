"""The source fleet's alert types, on monitoring's rules and evaluator (nothing evaluates
twice):

- ``vm_offline``: one rule per tier, "VM offline (<tier>)": down for more than the tier's
  ``TierCost.offline_alert_hours`` (``for_seconds``), scoped to the VMs of that tier; kept
  in step with the tier costs by ``portal.fleet.actions.tiers.sync_offline_rules``. The
  monitoring default "Node down" (5 minutes) is scoped to every node *but* the fleet's VMs
  (fleet migration 0004), so a VM raises its tier's alert, not both.
- ``disk_space``: monitoring's default "Disk space" rule (>= 80 %, clears < 75 %).
- ``api_quota``: monitoring's "API quota" rule on the heartbeat gauges ``api_calls`` and
  ``api_quota`` (>= 90 % of the quota).
- ``unusual_activity``: monitoring's baseline rule "Unusual API calls" (4 spreads over the
  VM's usual for the hour of the week).

A VM in maintenance has its alerts held (monitoring's hold): they do not fire while it is.
Registered with monitoring by ``register()`` (the app's ready()).
"""

from __future__ import annotations

from collections.abc import Iterable

from portal.fleet.choices import FleetTier
from portal.monitoring import scopes

NOT_A_VM = "fleet.not_vm"


def tier_scope(tier: str) -> str:
    return f"fleet.tier.{tier}"


def _vms_of(tier: str):
    def nodes() -> Iterable[int]:
        from portal.fleet.models import VM

        return VM.objects.filter(tier=tier).values_list("pk", flat=True)

    return nodes


def _every_vm() -> Iterable[int]:
    from portal.fleet.models import VM

    return VM.objects.values_list("pk", flat=True)


def _in_maintenance() -> Iterable[int]:
    from portal.fleet.models import VM

    return VM.objects.filter(maintenance=True).values_list("pk", flat=True)


def register() -> None:
    for tier in FleetTier:
        scopes.register_scope(
            tier_scope(tier.value), f"Fleet VMs of tier {tier.label}", _vms_of(tier.value)
        )
    scopes.register_scope(NOT_A_VM, "Every node but the fleet's VMs", _every_vm, exclude=True)
    scopes.register_hold("fleet maintenance", _in_maintenance)
