"""The fleet figures (``GET /api/metrics/fleet`` and the fleet pages): VMs by status, tier
and version; revenue, cost and margin, per customer too; usage now and over 30 days;
overdue customers with running VMs.

Whom they cover: operators and admins see the whole fleet; anyone else the VMs and
customers of their own memberships only, and no cost or margin (the provider's costs are
not a customer's business).

How they stay fast with 10k VMs and 30 days of 5-minute rollups (86 million rows):
- counts are one GROUP BY over the VMs with their derived status (portal.fleet.selectors);
- money is one read of the visible customers plus the tier costs, added in Python;
- usage now reads the VMs' liveness rows (the latest heartbeat's values; 10k rows,
  ``percentile_cont`` on PostgreSQL, the same interpolation in Python elsewhere);
- usage over 30 days of the whole fleet reads the 720 hourly sums (FleetUsageHour,
  portal/fleet/actions/usage.py) and adds their 1-point histograms; a customer's is one
  GROUP BY over its own VMs' rollups (the same histograms).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Max, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from portal.accounts.choices import BillingStatus
from portal.accounts.models import Customer
from portal.core.tenancy import is_operator
from portal.fleet import histograms
from portal.fleet.actions import usage
from portal.fleet.choices import FleetTier, VMStatus
from portal.fleet.models import VM, FleetUsageHour, TierCost
from portal.fleet.selectors import ONLINE_LIVENESS, customer_tier_expression, vms_with_status
from portal.monitoring.models import NodeLiveness, Rollup

P95 = 95
UNKNOWN_VERSION = "unknown"
NOW_COLUMNS = {"cpu": "cpu_percent", "memory": "memory_percent", "disk": "disk_percent"}
# Hours the figures sum up themselves when the beat has not (the first read after an hour
# ends; a cold start with weeks of rollups is left to the beat task).
MAX_HOURS_ON_READ = 6
CACHE_SECONDS = 3600


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class Scope:
    """Whose figures: the whole fleet, or the customers ``customer_ids``."""

    fleet: bool
    customer_ids: frozenset[int] = frozenset()

    def vms(self) -> QuerySet[VM]:
        rows = VM.objects.all()
        return rows if self.fleet else rows.filter(customer_id__in=self.customer_ids)

    def customers(self) -> QuerySet[Customer]:
        rows = Customer.objects.all()
        return rows if self.fleet else rows.filter(pk__in=self.customer_ids)


def scope_of(user) -> Scope:
    if is_operator(user):
        return Scope(fleet=True)
    return Scope(
        fleet=False,
        customer_ids=frozenset(Customer.objects.visible_to(user).values_list("pk", flat=True)),
    )


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


def _counts(scope: Scope) -> list[dict]:
    """(customer, tier, status, version) → VMs: one GROUP BY (a few thousand rows at most)."""
    return list(
        vms_with_status(scope.vms())
        .values("customer_id", "tier", "status", "version")  # type: ignore[misc]  # annotations
        .annotate(n=Count("pk"))
        .order_by()
    )


def vm_figures(counts: list[dict]) -> dict:
    by_status = dict.fromkeys(VMStatus.values, 0)
    by_tier = dict.fromkeys(FleetTier.values, 0)
    by_version: dict[str, int] = defaultdict(int)
    for row in counts:
        by_status[row["status"]] += row["n"]
        by_tier[row["tier"]] = by_tier.get(row["tier"], 0) + row["n"]
        by_version[row["version"] or UNKNOWN_VERSION] += row["n"]
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_tier": by_tier,
        "by_version": dict(sorted(by_version.items(), key=lambda item: (-item[1], item[0]))),
    }


def tier_costs() -> dict[str, Decimal]:
    costs = dict.fromkeys(FleetTier.values, Decimal("0"))
    costs.update(TierCost.objects.values_list("tier", "monthly_cost"))
    return costs


def money_figures(scope: Scope, counts: list[dict]) -> dict:
    """Revenue (monthly fees of active customers), cost (each VM's tier cost) and margin, in
    total, by tier (revenue by the customer's tier, cost by the VM's) and per customer."""
    costs = tier_costs()
    vms: dict[int, int] = defaultdict(int)
    running: dict[int, int] = defaultdict(int)
    cost_of: dict[int, Decimal] = defaultdict(Decimal)
    cost_by_tier = dict.fromkeys(FleetTier.values, Decimal("0"))
    for row in counts:
        vms[row["customer_id"]] += row["n"]
        if row["status"] == VMStatus.ONLINE:
            running[row["customer_id"]] += row["n"]
        cost = costs.get(row["tier"], Decimal("0")) * row["n"]
        cost_of[row["customer_id"]] += cost
        cost_by_tier[row["tier"]] = cost_by_tier.get(row["tier"], Decimal("0")) + cost
    customers = (
        scope.customers()
        .annotate(fleet_tier=customer_tier_expression())
        .values("pk", "name", "email", "billing_status", "monthly_fee", "fleet_tier")
        .order_by("name", "pk")
    )
    revenue_by_tier = dict.fromkeys(FleetTier.values, Decimal("0"))
    per_customer, overdue = [], []
    for customer in customers:
        pk = customer["pk"]
        active = customer["billing_status"] == BillingStatus.ACTIVE
        if not vms[pk] and not active:
            continue  # neither pays nor runs anything: not part of the fleet's figures
        revenue = customer["monthly_fee"] if active else Decimal("0")
        tier = customer["fleet_tier"]
        revenue_by_tier[tier] = revenue_by_tier.get(tier, Decimal("0")) + revenue
        per_customer.append(
            {
                "customer_id": pk,
                "name": customer["name"],
                "tier": tier,
                "billing_status": customer["billing_status"],
                "vms": vms[pk],
                "running_vms": running[pk],
                "revenue": _money(revenue),
                "cost": _money(cost_of[pk]),
                "margin": _money(revenue - cost_of[pk]),
            }
        )
        if customer["billing_status"] == BillingStatus.OVERDUE and running[pk]:
            overdue.append(
                {
                    "customer_id": pk,
                    "name": customer["name"],
                    "email": customer["email"],
                    "monthly_fee": _money(customer["monthly_fee"]),
                    "running_vms": running[pk],
                }
            )
    revenue = sum(revenue_by_tier.values(), Decimal("0"))
    cost = sum(cost_by_tier.values(), Decimal("0"))
    return {
        "revenue": {"monthly": _money(revenue), "by_tier": _moneys(revenue_by_tier)},
        "cost": {"monthly": _money(cost), "by_tier": _moneys(cost_by_tier)},
        "margin": {
            "monthly": _money(revenue - cost),
            "percent": round(float((revenue - cost) / revenue * 100), 1) if revenue else None,
        },
        "per_customer": per_customer,
        "overdue_customers": overdue,
    }


def _moneys(values: dict[str, Decimal]) -> dict[str, float]:
    return {key: _money(value) for key, value in values.items()}


def usage_now(scope: Scope) -> dict:
    """Average and p95 of the latest heartbeat's values of the VMs heard from (liveness up
    or late): one aggregate on PostgreSQL, the values read and interpolated elsewhere."""
    rows = NodeLiveness.objects.filter(
        node_id__in=scope.vms().values("pk"), status__in=list(ONLINE_LIVENESS)
    )
    out: dict = {}
    if connection.vendor == "postgresql":
        aggregates: dict = {"vms": Count("pk")}
        for metric, column in NOW_COLUMNS.items():
            aggregates[f"{metric}_avg"] = Avg(column)
            aggregates[f"{metric}_p95"] = PercentileCont(column, P95 / 100)
        found = rows.aggregate(**aggregates)
        out["vms"] = found["vms"]
        for metric in NOW_COLUMNS:
            out[f"{metric}_percent"] = _pair(found[f"{metric}_avg"], found[f"{metric}_p95"])
        return out
    values = list(rows.values_list(*NOW_COLUMNS.values()))
    out["vms"] = len(values)
    for index, metric in enumerate(NOW_COLUMNS):
        known = [row[index] for row in values if row[index] is not None]
        average = sum(known) / len(known) if known else None
        out[f"{metric}_percent"] = _pair(average, histograms.percentile_cont(known, P95))
    return out


def _pair(average: float | None, p95: float | None) -> dict:
    return {
        "avg": None if average is None else round(average, 2),
        "p95": None if p95 is None else round(p95, 2),
    }


def _from_summary(summary: dict) -> dict:
    """Average and p95 per metric of summed-up rollups (``usage.summarize``'s shape)."""
    out = {}
    for metric in histograms.METRICS:
        part = summary[metric]
        count = sum(part["bins"])
        out[f"{metric}_percent"] = _pair(
            part["sum"] / count if count else None, histograms.percentile(part["bins"], P95)
        )
    return out


def usage_30_days(scope: Scope, now: datetime, hourly: bool) -> dict:
    """Average and p95 of the VMs' 5-minute averages over the last 30 days and, with
    ``hourly``, the hourly averages (the chart's series), oldest first."""
    since = usage.hour_start(now - usage.WINDOW)
    if scope.fleet:
        return _fleet_30_days(since, now, hourly)
    rows = usage.vm_rollups(Rollup.objects.filter(bucket__gte=since), scope.vms())
    summary = usage.summarize_in_one_scan(rows)
    out = {"since": since, "rollups": summary["buckets"], **_from_summary(summary)}
    if hourly:
        series = (
            rows.annotate(hour=TruncHour("bucket"))
            .values("hour")
            .annotate(cpu=Avg("cpu_avg"), memory=Avg("memory_avg"), disk=Avg("disk_avg"))
            .order_by("hour")
        )
        out["hourly"] = [
            {"hour": row["hour"], **{f"{m}_percent": round(row[m], 2) for m in histograms.METRICS}}
            for row in series
        ]
    return out


def _fleet_30_days(since: datetime, now: datetime, with_hourly: bool) -> dict:
    """The 720 hourly sums added up, kept in the cache until one of them changes (an hour
    summed up, again or for the first time, or dropped): they cannot change otherwise."""
    usage.roll_up_hours(now, max_hours=MAX_HOURS_ON_READ, prune=False)
    rows = FleetUsageHour.objects.filter(hour__gte=since, buckets__gt=0)
    state = rows.aggregate(n=Count("pk"), last=Max("computed_at"))
    last = state["last"].timestamp() if state["last"] else 0
    key = f"fleet-usage-30d-{since.timestamp():.0f}-{state['n']}-{last:.6f}-{int(with_hourly)}"
    found = cache.get(key)
    if found is None:
        found = _add_up_hours(rows, since, with_hourly)
        cache.set(key, found, CACHE_SECONDS)
    return found


def _add_up_hours(rows: QuerySet[FleetUsageHour], since: datetime, with_hourly: bool) -> dict:
    summary: dict = {m: {"bins": [], "sum": 0.0} for m in histograms.METRICS}
    hourly, buckets = [], 0
    fields = [
        "hour",
        "buckets",
        *(f"{m}_{part}" for m in histograms.METRICS for part in ("sum", "bins")),
    ]
    for row in rows.values(*fields):
        buckets += row["buckets"]
        point = {"hour": row["hour"]}
        for metric in histograms.METRICS:
            part = summary[metric]
            part["bins"] = histograms.add(part["bins"], row[f"{metric}_bins"])
            part["sum"] += row[f"{metric}_sum"]
            point[f"{metric}_percent"] = round(row[f"{metric}_sum"] / row["buckets"], 2)
        hourly.append(point)
    for metric in histograms.METRICS:
        summary[metric]["bins"] = summary[metric]["bins"] or histograms.empty()
    out = {"since": since, "rollups": buckets, **_from_summary(summary)}
    return {**out, "hourly": hourly} if with_hourly else out


def fleet_figures(user, now: datetime | None = None, hourly: bool = False) -> dict:
    """Every figure ``user`` may see (module docstring); with ``hourly``, the 30 days' hourly
    averages too (``usage.last_30_days.hourly``: 720 points, the fleet page's chart)."""
    now = now or timezone.now()
    scope = scope_of(user)
    counts = _counts(scope)
    money = money_figures(scope, counts)
    figures = {
        "scope": "fleet" if scope.fleet else "customer",
        "generated_at": now,
        "vms": vm_figures(counts),
        "revenue": money["revenue"],
        "usage": {"now": usage_now(scope), "last_30_days": usage_30_days(scope, now, hourly)},
        "per_customer": money["per_customer"],
        "overdue_customers": money["overdue_customers"],
    }
    if scope.fleet:
        figures["cost"] = money["cost"]
        figures["margin"] = money["margin"]
    else:  # their own bill, not the provider's costs
        for row in figures["per_customer"]:
            del row["cost"], row["margin"]
    return figures
