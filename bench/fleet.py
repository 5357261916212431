"""``fleet_figures_ms`` (#17): ``GET /api/metrics/fleet`` with 10k VMs and 30 days of
5-minute rollups, p95 (target ≤ 200 ms); ``python -m bench --only fleet_figures_ms``.

Fill, with bulk SQL (``INSERT … SELECT generate_series``), untimed: ``CUSTOMERS`` customers
on the three plans (every tenth overdue), ``VMS`` nodes with a liveness row (up, varied
cpu/memory/disk, three product versions) and a VM profile each (the three tiers in turn, every
50th in maintenance), the three tier costs, and ``DAYS`` days of rollups for every VM (one
statement per day: 10k x 288 rows), up to the last full hour; then what the beat does every
few minutes, the fleet's hourly sums (``portal.fleet.actions.usage.roll_up_hours``; its
time per hour is a detail), and ``ANALYZE``.

Timing, through the bench's gunicorn (production configuration): the operator's token (the
whole fleet), each request on a fresh connection, after ``WARMUP`` unmeasured ones;
``REQUESTS`` requests alternating with the floor, ``GET /bench/floor/authenticated``
(bench/floor.py: the same token authentication, DRF view and JSON rendering, no query of
its own): the figure is the p95 (nearest rank) of the figures' times, the ratio to the
floor's p95 and the medians are details, and so is the p95 of one customer's figures (a
customer of 10 VMs, its own rollups read directly).
"""

import time
from datetime import UTC, datetime, timedelta

from bench import stats

VMS = 10_000
CUSTOMERS = 1_000
DAYS = 30
WARMUP = 3
REQUESTS = 41
TARGET_MS = 200
PATH = "/api/metrics/fleet"
FLOOR_PATH = "/bench/floor/authenticated"


def _customers(count: int) -> tuple[int, int]:
    from django.db import connection, transaction

    from bench.monitoring import _template_values
    from portal.accounts.models import Customer, Plan

    plans = list(Plan.objects.order_by("monthly_price").values_list("pk", flat=True))
    columns, values = _template_values(
        Customer(name="x", email="x@bench.invalid", plan_id=plans[0]),
        {"name", "email", "plan_id", "billing_status", "monthly_fee"},
    )
    plan_array = "ARRAY[" + ", ".join(str(pk) for pk in plans) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Customer._meta.db_table} (name, email, plan_id, billing_status, "  # noqa: S608
            f"monthly_fee, {', '.join(columns)}) SELECT 'bench customer ' || g, "
            f"'bench-' || g || '@bench.invalid', ({plan_array})[1 + mod(g, {len(plans)})], "
            "CASE WHEN mod(g, 10) = 0 THEN 'overdue' ELSE 'active' END, 50 + mod(g, 20) * 25, "
            f"{', '.join(['%s'] * len(values))} FROM generate_series(1, %s) g RETURNING id",
            [*values, count],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
    return ids[0], ids[-1]


def _vms(first_node: int, last_node: int, first_customer: int, customers: int) -> None:
    from django.db import connection, transaction

    from bench.monitoring import _template_values
    from portal.fleet.models import VM, TierCost

    columns, values = _template_values(VM(), {"customer_id", "tier", "maintenance"})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {VM._meta.db_table} (node_id, customer_id, tier, maintenance, "  # noqa: S608
            f"{', '.join(columns)}) SELECT n, %s + mod(g, %s), "
            "(ARRAY['starter', 'pro', 'enterprise'])[1 + mod(g, 3)], mod(g, 50) = 0, "
            f"{', '.join(['%s'] * len(values))} FROM (SELECT id AS n, row_number() OVER "
            "(ORDER BY id) AS g FROM nodes_node WHERE id BETWEEN %s AND %s) s",
            [first_customer, customers, *values, first_node, last_node],
        )
    for tier, cost in (("starter", 20), ("pro", 60), ("enterprise", 250)):
        TierCost.objects.update_or_create(tier=tier, defaults={"monthly_cost": cost})


def _rollups(first_node: int, last_node: int, end: datetime) -> int:
    """``DAYS`` days of 5-minute rollups of every VM first..last, ending at ``end``: one
    statement per day, rows in the order monitoring writes them (bucket by bucket, every
    node's rollup of a bucket together, so an hour's rows sit together as in production).
    The table's two indexes are dropped for the fill and built again after it (what a
    restore does; a bulk INSERT into them was 3x slower), exactly as the model declares
    them."""
    from django.db import connection, transaction

    from portal.monitoring.models import Rollup

    per_day = 288
    rows = 0
    indexes, constraints = Rollup._meta.indexes, Rollup._meta.constraints
    with connection.schema_editor() as editor:
        for constraint in constraints:
            editor.remove_constraint(Rollup, constraint)
        for index in indexes:
            editor.remove_index(Rollup, index)
    for day in range(DAYS, 0, -1):
        start = end - timedelta(days=day)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(
                """
                INSERT INTO monitoring_rollup (node_id, bucket, samples, cpu_min, cpu_avg,
                    cpu_max, memory_min, memory_avg, memory_max, disk_min, disk_avg, disk_max,
                    disk_used_gb_max)
                SELECT n, %s + interval '5 minutes' * k, 10, c * 0.8, c, least(c * 1.2, 100),
                    m * 0.9, m, least(m * 1.1, 100), d, d, d, d / 2
                FROM (SELECT node_id AS n, k, mod(node_id * 37 + k * 11, 97)::float AS c,
                          (20 + mod(node_id * 13 + k * 7, 70))::float AS m,
                          (10 + mod(node_id * 3 + k / 288, 85))::float AS d
                      FROM generate_series(0, %s) k CROSS JOIN fleet_vm
                      WHERE node_id BETWEEN %s AND %s) v
                ORDER BY k, n
                """,
                [start, per_day - 1, first_node, last_node],
            )
            rows += cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.add_index(Rollup, index)
        for constraint in constraints:
            editor.add_constraint(Rollup, constraint)
    return rows


def fill() -> dict:
    from django.db import connection

    from bench.monitoring import bulk_nodes
    from portal.fleet.actions import usage

    seconds = {}
    begun = time.monotonic()
    first_customer, last_customer = _customers(CUSTOMERS)
    first, last = bulk_nodes(
        "bench-vm-",
        VMS,
        {
            "status": "'up'",
            "cpu_percent": "mod(g * 37, 97)::float",
            "memory_percent": "(20 + mod(g * 13, 70))::float",
            "disk_percent": "(10 + mod(g * 3, 85))::float",
            "product_version": "(ARRAY['2.3.0', '2.4.0', '2.4.1'])[1 + mod(g, 3)]",
            "last_seen_at": "now()",
        },
    )
    _vms(first, last, first_customer, last_customer - first_customer + 1)
    seconds["customers_vms"] = round(time.monotonic() - begun, 1)
    begun = time.monotonic()
    now = datetime.now(UTC)
    end = usage.hour_start(now)  # rollups up to the last full hour: no hour falls due meanwhile
    rollups = _rollups(first, last, end)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seconds["rollups"] = round(time.monotonic() - begun, 1)
    begun = time.monotonic()
    hours = usage.roll_up_hours(now, max_hours=DAYS * 24 + 24)
    seconds["hourly_sums"] = round(time.monotonic() - begun, 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_total_relation_size('monitoring_rollup')")
        rollup_bytes = cursor.fetchone()[0]
    return {
        "vms": VMS,
        "customers": CUSTOMERS,
        "rollups": rollups,
        "rollup_table_bytes": rollup_bytes,
        "hours_summed": hours,
        "seconds": seconds,
        "hourly_sum_ms_per_hour": round(seconds["hourly_sums"] * 1000 / hours, 1)
        if hours
        else None,
        "first_customer": first_customer,
    }


def _customer_token(customer_id: int) -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from portal.accounts.models import Membership

    user = get_user_model().objects.create_user("bench-customer", password=None)
    Membership.objects.create(user=user, customer_id=customer_id, role="owner")
    return Token.objects.create(user=user).key


def _time(ctx, path: str, token: str) -> float:
    from bench.scale import timed_get

    ms, status, _ = timed_get(
        ctx.port, path, {"Authorization": f"Token {token}", "Accept": "application/json"}
    )
    if status != 200:
        raise RuntimeError(f"GET {path} -> {status}")
    return ms


def measure(ctx, requests: int = REQUESTS) -> dict:
    from django.db import connection

    ctx.require(900, "fleet_figures_ms fill")
    filled = fill()
    token = ctx.fixtures.token
    for _ in range(WARMUP):
        _time(ctx, PATH, token)
        _time(ctx, FLOOR_PATH, token)
    figures: list[float] = []
    floor: list[float] = []
    for index in range(requests):
        pair = [(figures, PATH), (floor, FLOOR_PATH)]
        for times, path in pair if index % 2 == 0 else reversed(pair):
            times.append(_time(ctx, path, token))
    customer = _customer_token(filled["first_customer"])
    _time(ctx, PATH, customer)
    customer_times = [_time(ctx, PATH, customer) for _ in range(max(requests // 2, 5))]
    connection.close()
    p95 = stats.percentile(figures, 95)
    floor_p95 = stats.percentile(floor, 95)
    return {
        "figures": {"fleet_figures_ms": (round(p95, 1), "ms")},
        "details": {
            "fleet_figures_ms": {
                "method": f"GET {PATH} as an operator (the whole fleet), {VMS} VMs of "
                f"{CUSTOMERS} customers, {DAYS} days of 5-minute rollups by bulk SQL, the "
                "hourly sums made first (as the beat does); each request on a fresh "
                f"connection, {requests} alternating with the floor {FLOOR_PATH} (same "
                "authentication and rendering, no query); p95 by nearest rank",
                "target_ms": TARGET_MS,
                "ms": stats.summary(figures),
                "floor_ms": stats.summary(floor),
                "ratio_p95_to_floor_p95": round(p95 / floor_p95, 2) if floor_p95 else None,
                "ratio_median_to_floor_median": round(
                    stats.median(figures) / stats.median(floor), 2
                ),
                "customer_of_10_vms_ms": stats.summary(customer_times),
                "fill": filled,
            }
        },
    }
