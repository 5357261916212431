"""Sample fleet data for development: ``POST /api/seed-test-data`` (DEBUG only) and
``manage.py seed_fleet`` both call :func:`do_seed_fleet`.

Two customers of each tier, two VMs each (addresses from 198.51.100.0/24, a documentation
range, so no real machine is reached), heartbeats and a day of samples and a week of hourly
rollups per VM, the tier costs and one update. Idempotent: rows are found by their unique
names (customer email, VM hostname, tier, update version) and only what is missing is made
(a tier cost only where none is set: still 0); history is made only for the VMs made in this
call.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import transaction
from django.utils import timezone

from portal.accounts.choices import DEFAULT_PLANS, BillingStatus
from portal.accounts.models import Customer, Plan
from portal.fleet.actions import vms
from portal.fleet.choices import FleetTier
from portal.fleet.models import VM, TierCost, Update
from portal.monitoring import actions as monitoring
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Rollup, Sample
from portal.nodes.choices import CredentialKind
from portal.nodes.models import Credential

CREDENTIAL = "fleet-seed"  # a generated key no machine trusts: seed VMs are not reachable
DOMAIN = "fleet-seed.example"
TIERS = {
    # tier: (monthly fee, cost per VM, (cpu_cores, memory_gb, disk_gb))
    FleetTier.STARTER: ("49.00", "12.00", (2, 4, 50)),
    FleetTier.PRO: ("199.00", "40.00", (4, 16, 200)),
    FleetTier.ENTERPRISE: ("899.00", "150.00", (16, 64, 1000)),
}
CUSTOMERS_PER_TIER = 2
VMS_PER_CUSTOMER = 2
DEMO_ADDRESS = 200  # the demo customer's VMs: 198.51.100.200 and up
VERSION, NEW_VERSION = "1.4.2", "1.5.0"
SAMPLE_MINUTES = 10  # a day of samples every 10 minutes
ROLLUP_DAYS = 7  # and a week of hourly rollups


def do_seed_fleet(
    now: datetime | None = None, *, demo_customer: Customer | None = None
) -> dict[str, int]:
    """Make what is missing of the sample fleet; how many rows of each kind were made.
    ``demo_customer`` (the demo's, manage.py seed_demo) gets VMs of its own too, so its
    owner has a fleet to look at."""
    now = now or timezone.now()
    _plans()
    made = {"tier_costs": _tier_costs(), "updates": _update()}
    with transaction.atomic():
        customers, new_vms = _customers_and_vms()
        if demo_customer is not None:
            new_vms += _vms_of(demo_customer, FleetTier.PRO, "demo", DEMO_ADDRESS, _credential())
        made["customers"] = customers
        made["vms"] = len(new_vms)
        for n, vm in enumerate(new_vms):
            _liveness(vm, n, now)
        made["samples"] = _samples(new_vms, now)
        made["rollups"] = _rollups(new_vms, now)
    return made


def _plans() -> None:
    """The portal's plans, made by a data migration: again here if they were deleted (the
    sample customers are on them)."""
    for tier, limits in DEFAULT_PLANS.items():
        Plan.objects.get_or_create(tier=tier, defaults={"name": tier.label, **limits})


def _tier_costs() -> int:
    """Each tier's cost per VM where none is set (no row, or still 0); a cost an admin set
    stays. How many were set."""
    made = 0
    for tier, (_fee, cost, _sizes) in TIERS.items():
        row, created = TierCost.objects.get_or_create(
            tier=tier, defaults={"monthly_cost": Decimal(cost)}
        )
        if not created and row.monthly_cost == 0:
            row.monthly_cost = Decimal(cost)
            row.save(update_fields=["monthly_cost", "updated_at"])
            created = True
        made += created
    return made


def _update() -> int:
    _update, made = Update.objects.get_or_create(
        version=NEW_VERSION,
        defaults={"description": "Sample update (seed data): the next product version."},
    )
    return int(made)


def _credential() -> Credential:
    found = Credential.objects.filter(name=CREDENTIAL).first()
    if found:
        return found
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    credential = Credential(name=CREDENTIAL, kind=CredentialKind.SSH_KEY, secret=key.decode())
    credential.full_clean()
    credential.save()
    return credential


def _customers_and_vms() -> tuple[int, list[VM]]:
    credential = _credential()
    made_customers, new_vms = 0, []
    address = 11
    for tier in TIERS:
        for c in range(1, CUSTOMERS_PER_TIER + 1):
            customer, made = _customer(tier, c, TIERS[tier][0])
            made_customers += made
            new_vms += _vms_of(customer, tier, f"{tier}-{c}", address, credential)
            address += VMS_PER_CUSTOMER
    return made_customers, new_vms


def _vms_of(
    customer: Customer, tier: FleetTier, prefix: str, first_address: int, credential: Credential
) -> list[VM]:
    """The customer's sample VMs that are still missing (found by hostname)."""
    cpu_cores, memory_gb, disk_gb = TIERS[tier][2]
    made = []
    for v in range(VMS_PER_CUSTOMER):
        hostname = f"{prefix}-vm{v + 1}.{DOMAIN}"
        if not VM.objects.filter(node__name=hostname).exists():
            made.append(
                vms.do_create_vm(
                    hostname=hostname,
                    ip_address=f"198.51.100.{first_address + v}",
                    customer_id=customer.pk,
                    tier=tier,
                    credential=credential.pk,
                    cpu_cores=cpu_cores,
                    memory_gb=memory_gb,
                    disk_gb=disk_gb,
                )
            )
    return made


def _customer(tier: str, n: int, fee: str) -> tuple[Customer, bool]:
    email = f"{tier}-{n}@{DOMAIN}"
    found = Customer.objects.filter(email=email).first()
    if found:
        return found, False
    # The second starter customer is overdue: the figures' "overdue with running VMs".
    overdue = tier == FleetTier.STARTER and n == 2
    customer = vms.do_create_customer(
        name=f"{tier.title()} Customer {n}",
        email=email,
        tier=tier,
        company=f"{tier.title()} Co {n}",
        billing_status=BillingStatus.OVERDUE if overdue else BillingStatus.ACTIVE,
        monthly_fee=Decimal(fee),
    )
    return customer, True


def _liveness(vm: VM, n: int, now: datetime) -> None:
    """Most VMs online on the current version; one silent for two days (offline), one in
    maintenance, one whose last action failed (error), one already on the new version."""
    silent = n == 1
    seen = now - (timedelta(days=2) if silent else timedelta(seconds=20))
    NodeLiveness.objects.update_or_create(
        node_id=vm.pk,
        defaults={
            "status": Liveness.DOWN if silent else Liveness.UP,
            "status_changed_at": seen,
            "last_seen_at": seen,
            "last_seq": 1,
            "next_due_at": seen + timedelta(seconds=90),
            "late_at": seen + timedelta(seconds=45),
            "product_version": NEW_VERSION if n == 2 else VERSION,
            **_values(vm.pk, now),
        },
    )
    flags: dict[str, Any] = {}
    if n == 3:
        flags = {"maintenance": True, "maintenance_reason": "Sample maintenance (seed data)."}
    elif n == 4:
        flags = {"last_action_failed": True}
    if flags:
        VM.objects.filter(pk=vm.pk).update(**flags)


def _values(node_id: int, at: datetime) -> dict[str, float]:
    """Plausible gauges that move over the day, different per VM."""
    phase = (node_id % 7) / 7
    day = (at.hour * 60 + at.minute) / 1440
    wave = math.sin(2 * math.pi * (day + phase))
    disk = 40 + (node_id % 5) * 10
    return {
        "cpu_percent": round(35 + 25 * wave, 1),
        "memory_percent": round(55 + 15 * wave, 1),
        "disk_percent": float(disk),
        "disk_used_gb": round(disk * 0.5, 1),
    }


def _samples(new_vms: list[VM], now: datetime) -> int:
    steps = 24 * 60 // SAMPLE_MINUTES
    rows = [
        Sample(node_id=vm.pk, at=at, **_values(vm.pk, at))
        for vm in new_vms
        for at in (now - timedelta(minutes=SAMPLE_MINUTES * k) for k in range(steps))
    ]
    Sample.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _rollups(new_vms: list[VM], now: datetime) -> int:
    rows = []
    for vm in new_vms:
        for k in range(1, ROLLUP_DAYS * 24 + 1):
            bucket = monitoring.bucket_start(now - timedelta(hours=k))
            values = _values(vm.pk, bucket)
            cpu, memory, disk = (values[f"{m}_percent"] for m in ("cpu", "memory", "disk"))
            rows.append(
                Rollup(
                    node_id=vm.pk,
                    bucket=bucket,
                    samples=1,
                    cpu_min=cpu,
                    cpu_avg=cpu,
                    cpu_max=cpu,
                    memory_min=memory,
                    memory_avg=memory,
                    memory_max=memory,
                    disk_min=disk,
                    disk_avg=disk,
                    disk_max=disk,
                    disk_used_gb_max=values["disk_used_gb"],
                )
            )
    Rollup.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
