"""Reads of the fleet: a VM's derived status and reported version, the VM and customer rows
the API lists, and the source API's tier name for a customer.

A VM's status is never stored. The rule (one rule, two forms that must agree: ``status_of``
for one VM in Python, ``status_expression`` for a queryset in SQL):

1. ``maintenance`` when the VM is flagged for maintenance;
2. ``error`` when its latest action (restart, rebuild, update) failed;
3. ``online`` when its node's liveness (portal/monitoring) is ``up`` or ``late``;
4. ``offline`` otherwise (``down``, ``unknown``, or no agent at all).

``version`` is the product version the VM's own heartbeat last reported
(``NodeLiveness.product_version``; blank when it never reported one).
"""

from __future__ import annotations

from django.db.models import Case, Count, F, QuerySet, Value, When
from django.db.models.functions import Coalesce

from portal.accounts.choices import PlanTier
from portal.accounts.models import Customer
from portal.core.api.filters import MAX_ID
from portal.core.errors import NotFound
from portal.core.tenancy import is_operator
from portal.fleet.choices import FleetTier, VMStatus
from portal.fleet.models import VM
from portal.monitoring import selectors as monitoring
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness

# Liveness states in which a VM counts as online: a late beat is not yet a lost VM.
ONLINE_LIVENESS = (Liveness.UP, Liveness.LATE)
# The source API's tier of a customer on each portal plan (the plans call "pro" "team").
PLAN_TIER_TO_FLEET = {
    PlanTier.STARTER: FleetTier.STARTER,
    PlanTier.TEAM: FleetTier.PRO,
    PlanTier.ENTERPRISE: FleetTier.ENTERPRISE,
}
FLEET_TIER_TO_PLAN = {fleet: plan for plan, fleet in PLAN_TIER_TO_FLEET.items()}


# --- a VM's status and version --------------------------------------------------------------


def status_of(*, maintenance: bool, action_failed: bool, liveness: str | None) -> VMStatus:
    """The status rule (module docstring) on plain values."""
    if maintenance:
        return VMStatus.MAINTENANCE
    if action_failed:
        return VMStatus.ERROR
    return VMStatus.ONLINE if liveness in ONLINE_LIVENESS else VMStatus.OFFLINE


def status_expression() -> Case:
    """The status rule as SQL over a VM queryset (joins the node's liveness row)."""
    return Case(
        When(maintenance=True, then=Value(VMStatus.MAINTENANCE.value)),
        When(last_action_failed=True, then=Value(VMStatus.ERROR.value)),
        When(
            node__liveness__status__in=[state.value for state in ONLINE_LIVENESS],
            then=Value(VMStatus.ONLINE.value),
        ),
        default=Value(VMStatus.OFFLINE.value),
    )


def vms_with_status(rows: QuerySet[VM]) -> QuerySet[VM]:
    """``rows`` annotated in the same query with ``status``, ``version`` (the reported
    product version, "" if none) and ``last_heartbeat`` (None if never): 10k VMs are one
    query. Filter or group on the annotations like on fields (``.filter(status="online")``)."""
    return rows.annotate(
        status=status_expression(),
        version=Coalesce(F("node__liveness__product_version"), Value("")),
        last_heartbeat=F("node__liveness__last_seen_at"),
    )


def _liveness(vm: VM) -> NodeLiveness | None:
    """The VM's node's liveness row, or None (no agent yet): read once per instance."""
    try:
        return vm.node.liveness
    except NodeLiveness.DoesNotExist:
        return None


def vm_status(vm: VM) -> VMStatus:
    """One VM's status: the annotation when it came from ``vms_with_status``, else the same
    rule in Python (reads the node's liveness row if not already loaded)."""
    annotated = vm.__dict__.get("status")
    if annotated is not None:
        return VMStatus(annotated)
    liveness = _liveness(vm)
    return status_of(
        maintenance=vm.maintenance,
        action_failed=vm.last_action_failed,
        liveness=liveness.status if liveness else None,
    )


def vm_version(vm: VM) -> str:
    """The product version the VM last reported ("" if none)."""
    annotated = vm.__dict__.get("version")
    if annotated is not None:
        return annotated
    liveness = _liveness(vm)
    return liveness.product_version if liveness else ""


def vm_last_heartbeat(vm: VM):
    """When the VM's last heartbeat arrived (None: never)."""
    if "last_heartbeat" in vm.__dict__:
        return vm.__dict__["last_heartbeat"]
    liveness = _liveness(vm)
    return liveness.last_seen_at if liveness else None


# --- the API's rows -------------------------------------------------------------------------


def visible_vms(user) -> QuerySet[VM]:
    """Operators and admins see every VM (they run the fleet); others their customers'."""
    return VM.objects.all() if is_operator(user) else VM.objects.visible_to(user)


def can_operate(user, vm: VM) -> bool:
    """May ``user`` change ``vm`` (maintenance on or off)? Operators, admins, and owners of
    its customer; a member only reads."""
    return is_operator(user) or VM.objects.filter(pk=vm.pk).changeable_by(user).exists()


def vm_rows(user, *, status: str | None = None, customer_id: int | None = None):
    """The VMs ``user`` may see with their status, version and node (one query), by id;
    narrowed to a status and/or a customer when given."""
    rows = vms_with_status(visible_vms(user).select_related("node", "customer"))
    if status:
        rows = rows.filter(status=status)  # type: ignore[misc]  # an annotation
    if customer_id is not None:
        rows = rows.filter(customer_id=customer_id)
    return rows.order_by("node_id")


def vm_for(user, vm_id: int) -> VM:
    """VM ``vm_id`` as ``user`` may see it, or NotFound (also for another customer's VM)."""
    vm = vm_rows(user).filter(pk=vm_id).first() if 0 < vm_id <= MAX_ID else None
    if vm is None:
        raise NotFound(f"No VM {vm_id}.", field="vm_id")
    return vm


METRIC_FIELDS = ("cpu_percent", "memory_percent", "disk_percent", "disk_used_gb")


def vm_metrics(vm_id: int, hours: int) -> dict:
    """A VM's metric history in the source API's names (monitoring's samples, or its
    5-minute rollups beyond MONITORING_RAW_QUERY_HOURS), oldest first."""
    history = monitoring.history(vm_id, hours)
    points = [
        {"vm_id": vm_id, "timestamp": point["at"], **{name: point[name] for name in METRIC_FIELDS}}
        for point in history["points"]
    ]
    return {"vm_id": vm_id, "hours": hours, "resolution": history["resolution"], "metrics": points}


def fleet_tier(plan_tier: str) -> str:
    """A customer's tier in the source API from its plan's tier (team → pro)."""
    return PLAN_TIER_TO_FLEET.get(PlanTier(plan_tier), plan_tier)


def customer_tier_expression() -> Case:
    """``fleet_tier`` as SQL over a customer queryset."""
    return Case(
        *(
            When(plan__tier=plan.value, then=Value(fleet.value))
            for plan, fleet in PLAN_TIER_TO_FLEET.items()
        ),
        default=F("plan__tier"),
    )


def customer_rows(user) -> QuerySet[Customer]:
    """The customers ``user`` may see (operators and admins: all), with their source tier
    (``fleet_tier``), by id."""
    customers = Customer.objects.all() if is_operator(user) else Customer.objects.visible_to(user)
    return (
        customers.select_related("plan")
        .annotate(fleet_tier=customer_tier_expression())
        .order_by("id")
    )


def customer_for(user, customer_id: int, *, with_vm_count: bool = False) -> Customer:
    """Customer ``customer_id`` as ``user`` may see it (with ``vm_count``), or NotFound."""
    if not 0 < customer_id <= MAX_ID:
        raise NotFound(f"No customer {customer_id}.", field="customer_id")
    rows = customer_rows(user).filter(pk=customer_id)
    if with_vm_count:
        rows = rows.annotate(vm_count=Count("vms"))
    customer = rows.first()
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", field="customer_id")
    return customer


def owned_node_ids(user) -> QuerySet:
    """The node ids of the VMs ``user``'s customers own (a subquery): monitoring shows their
    members these nodes' alerts (portal/monitoring/owners.py)."""
    return VM.objects.visible_to(user).values("node_id")
