"""Reads of the fleet pages (portal/fleet/views.py): the open alerts of fleet VMs, the
rollouts' wave progress, and a customer's VMs with what their user may do to them."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from portal.core.tenancy import is_operator
from portal.fleet.choices import RolloutStatus, TargetStatus
from portal.fleet.models import VM, Rollout, RolloutTarget
from portal.fleet.rollout_selectors import counts_by_wave
from portal.fleet.selectors import vm_rows
from portal.monitoring import selectors as monitoring
from portal.monitoring.models import Alert

RECENT_ENDED_ROLLOUTS = 5
OPEN_ALERTS_SHOWN = 20
# A target that is no longer waiting or being updated: the wave's progress counts it.
DONE = (TargetStatus.SUCCEEDED, TargetStatus.FAILED, TargetStatus.SKIPPED)


def open_vm_alerts(limit: int = OPEN_ALERTS_SHOWN) -> tuple[list[Alert], int]:
    """The worst open alerts of fleet VMs (and of their customers), and how many are open."""
    about_fleet = Q(node__fleet_vm__isnull=False) | Q(
        node__isnull=True, customer__vms__isnull=False
    )
    rows = monitoring.alert_rows().filter(about_fleet).distinct()
    return list(rows[:limit]), rows.count()


def rollouts_shown() -> QuerySet[Rollout]:
    """Rollouts not ended, then the latest ended ones."""
    live = Rollout.objects.exclude(status__in=Rollout.TERMINAL)
    ended = Rollout.objects.filter(status__in=Rollout.TERMINAL).order_by("-created_at", "-id")
    ids = [
        *live.values_list("pk", flat=True),
        *ended.values_list("pk", flat=True)[:RECENT_ENDED_ROLLOUTS],
    ]
    return (
        Rollout.objects.filter(pk__in=ids).select_related("update").order_by("-created_at", "-id")
    )


def rollout_progress() -> list[dict]:
    """Each rollout shown with its waves: per wave the targets by status (one GROUP BY)."""
    rollouts = list(rollouts_shown())
    targets = RolloutTarget.objects.filter(rollout__in=[r.pk for r in rollouts])
    counts = counts_by_wave(targets)
    return [_progress(rollout, counts.get(rollout.pk, {})) for rollout in rollouts]


def _progress(rollout: Rollout, waves: dict[int, dict[str, int]]) -> dict:
    shown: list[dict[str, Any]] = []
    for wave in sorted(waves):
        by_status = {status: waves[wave].get(status, 0) for status in TargetStatus.values}
        total = sum(by_status.values())
        done = sum(by_status[status] for status in DONE)
        shown.append(
            {
                "wave": wave,
                "total": total,
                "done": done,
                "percent": round(100 * done / total) if total else 0,
                "by_status": by_status,
            }
        )
    targets = sum(wave["total"] for wave in shown)
    done = sum(wave["done"] for wave in shown)
    return {
        "id": rollout.pk,
        "version": rollout.update.version,
        "status": rollout.status,
        "status_label": RolloutStatus(rollout.status).label,
        "reason": rollout.reason,
        "current_wave": rollout.current_wave,
        "planned_waves": rollout.waves,
        "targets": targets,
        "done": done,
        "failed": sum(wave["by_status"][TargetStatus.FAILED] for wave in shown),
        "percent": round(100 * done / targets) if targets else 0,
        "waves": shown,
        "started_at": rollout.started_at,
        "finished_at": rollout.finished_at,
    }


def my_vms(user) -> list[VM]:
    """The VMs ``user`` sees with their status and version, each marked ``may_operate``
    (restart and rebuild: an operator, or an owner of the VM's customer, as the API's
    check_may_operate decides)."""
    rows = list(vm_rows(user))
    mine = (
        set()
        if is_operator(user)
        else set(VM.objects.changeable_by(user).values_list("pk", flat=True))
    )
    for vm in rows:
        vm.may_operate = is_operator(user) or vm.pk in mine
    return rows
