"""Reads of updates and rollouts, with tenancy: admins and operators see every one; a
customer's user sees only the updates and rollouts that touched a VM of theirs, and of a
rollout only their own VMs' results.

An update's ``rollout_status`` (the source API's field) is the status of its latest rollout
the user may see, ``pending`` while it has none; ``completed_at`` is when that rollout
completed (None otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from portal.core.errors import NotFound
from portal.core.tenancy import is_operator
from portal.fleet.choices import RolloutStatus
from portal.fleet.choices import TargetStatus as T
from portal.fleet.models import VM, Rollout, RolloutTarget, Update

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    AnyUser = User | AnonymousUser | None


def sees_all(user: AnyUser) -> bool:
    return is_operator(user)


def _their_vms(user: AnyUser) -> QuerySet[VM]:
    return VM.objects.visible_to(user)


def visible_rollouts(user: AnyUser) -> QuerySet[Rollout]:
    rows = Rollout.objects.select_related("update")
    if sees_all(user):
        return rows
    if not (user and user.is_authenticated):
        return rows.none()
    touched = RolloutTarget.objects.filter(vm__in=_their_vms(user)).values("rollout_id")
    return rows.filter(pk__in=touched)


def visible_targets(rollout: Rollout, user: AnyUser) -> QuerySet[RolloutTarget]:
    rows = rollout.targets.select_related("vm__node").order_by("wave", "pk")
    return rows if sees_all(user) else rows.filter(vm__in=_their_vms(user))


def visible_updates(user: AnyUser) -> QuerySet[Update]:
    """Updates with ``rollout_status``, ``completed_at`` and ``latest_rollout_id``."""
    rollouts = visible_rollouts(user)
    latest = rollouts.filter(update=OuterRef("pk")).order_by("-created_at", "-pk")
    rows = Update.objects.annotate(
        latest_rollout_id=Subquery(latest.values("pk")[:1]),
        rollout_status=Coalesce(
            Subquery(latest.values("status")[:1]), Value(RolloutStatus.PENDING.value)
        ),
        latest_finished_at=Subquery(latest.values("finished_at")[:1]),
    )
    if not sees_all(user):
        rows = rows.filter(pk__in=rollouts.values("update_id"))
    return rows.order_by("-created_at", "-pk")


def update_for(user: AnyUser, update_id: int) -> Update:
    update = visible_updates(user).filter(pk=update_id).first()
    if update is None:
        raise NotFound(f"No update {update_id}.", field="id")
    return update


def rollout_for(user: AnyUser, rollout_id: int) -> Rollout:
    rollout = visible_rollouts(user).filter(pk=rollout_id).first()
    if rollout is None:
        raise NotFound(f"No rollout {rollout_id}.", field="id")
    return rollout


def target_counts(targets: QuerySet[RolloutTarget]) -> dict[str, int]:
    """How many of ``targets`` are in each status (every status named, 0 if none)."""
    counted = dict(targets.order_by().values_list("status").annotate(n=Count("pk")))
    return {status: counted.get(status, 0) for status in T.values}


def counts_by_wave(targets: QuerySet[RolloutTarget]) -> dict[int, dict[int, dict[str, int]]]:
    """Rollout id -> wave -> status -> how many of ``targets`` (one GROUP BY, any number of
    rollouts): the API's wave progress and the fleet page's."""
    counted = targets.order_by().values_list("rollout_id", "wave", "status").annotate(n=Count("pk"))
    counts: dict[int, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for rollout_id, wave, status, n in counted:
        counts[rollout_id][wave][status] = n
    return counts


def wave_progress(targets: QuerySet[RolloutTarget]) -> list[dict[str, Any]]:
    """Per wave (from 1) of one rollout's ``targets``: its size and how many of its VMs are
    in each status."""
    progress = []
    for waves in counts_by_wave(targets.filter(wave__gt=0)).values():
        for wave in sorted(waves):
            by_status = {status: waves[wave].get(status, 0) for status in T.values}
            progress.append({"wave": wave, "size": sum(by_status.values()), **by_status})
    return progress


def failed_targets(rollout: Rollout) -> QuerySet[RolloutTarget]:
    return rollout.targets.filter(Q(status=T.FAILED)).select_related("vm__node")
