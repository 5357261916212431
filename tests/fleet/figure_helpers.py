"""Known fleet fixtures for the figures, the dashboard and the alerts tests (helper
"figures")."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group

from portal.accounts.choices import BillingStatus, PlanTier
from portal.core.tenancy import OPERATORS_GROUP
from portal.fleet.models import VM, TierCost
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Rollup
from tests.factories import NodeFactory, UserFactory
from tests.fleet.api_helpers import customer, member_of, vm

HOUR = timedelta(hours=1)


@dataclass
class Fleet:
    a: object  # starter, active, 100/month: an online VM (v1.0) and an offline one
    b: object  # team (pro), overdue, 250/month: an online pro VM (v1.1)
    c: object  # enterprise, active, 1000/month: a VM in maintenance
    a_online: VM
    a_offline: VM
    b_online: VM
    c_maintenance: VM


def costs(starter="10", pro="40", enterprise="200") -> None:
    for tier, cost in (("starter", starter), ("pro", pro), ("enterprise", enterprise)):
        TierCost.objects.update_or_create(tier=tier, defaults={"monthly_cost": Decimal(cost)})


def with_usage(row: VM, cpu: float, memory: float, disk: float) -> VM:
    NodeLiveness.objects.filter(node_id=row.pk).update(
        cpu_percent=cpu, memory_percent=memory, disk_percent=disk
    )
    return row


def fleet() -> Fleet:
    costs()
    a = customer(PlanTier.STARTER, monthly_fee=Decimal("100"))
    b = customer(PlanTier.TEAM, monthly_fee=Decimal("250"), billing_status=BillingStatus.OVERDUE)
    c = customer(PlanTier.ENTERPRISE, monthly_fee=Decimal("1000"))
    return Fleet(
        a,
        b,
        c,
        with_usage(vm(a, liveness=Liveness.UP, version="1.0"), 10, 20, 30),
        vm(a, liveness=Liveness.DOWN, version="1.0"),
        with_usage(vm(b, tier="pro", liveness=Liveness.UP, version="1.1"), 50, 60, 90),
        vm(c, tier="enterprise", maintenance=True),
    )


def rollups(node_id: int, hour: datetime, cpu: float, memory: float, disk: float) -> None:
    """The 12 five-minute rollups of ``hour`` for a node, all with these averages."""
    Rollup.objects.bulk_create(
        Rollup(
            node_id=node_id,
            bucket=hour + timedelta(minutes=5 * n),
            samples=10,
            cpu_min=cpu,
            cpu_avg=cpu,
            cpu_max=cpu,
            memory_min=memory,
            memory_avg=memory,
            memory_max=memory,
            disk_min=disk,
            disk_avg=disk,
            disk_max=disk,
            disk_used_gb_max=1.0,
        )
        for n in range(12)
    )


def operator():
    user = UserFactory()
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    return user


def not_a_vm_node():
    return NodeFactory()


__all__ = ["Fleet", "costs", "fleet", "member_of", "not_a_vm_node", "operator", "rollups"]
