"""Rollups, pruning and GET /api/nodes/{id}/metrics."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from portal.monitoring import actions
from portal.monitoring.models import Rollup, Sample
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _samples(node, start, count, step=30, cpu=lambda i: float(i)):
    Sample.objects.bulk_create(
        [
            Sample(
                node=node,
                at=start + timedelta(seconds=step * i),
                cpu_percent=cpu(i),
                memory_percent=50.0,
                disk_percent=10.0 + i,
                disk_used_gb=1.0 * i,
                load1=0.5,
            )
            for i in range(count)
        ]
    )


def test_rollups_are_min_avg_max_per_node_and_5_minute_bucket():
    a, b = NodeFactory(), NodeFactory()
    _samples(a, T0, 20)  # 10 minutes: two buckets of 10
    _samples(b, T0 + timedelta(seconds=5), 10, cpu=lambda i: 80.0)
    done = actions.rollup(now=T0 + timedelta(minutes=11))
    assert done == 2
    first = Rollup.objects.get(node=a, bucket=T0)
    assert (first.samples, first.cpu_min, first.cpu_avg, first.cpu_max) == (10, 0, 4.5, 9)
    assert (first.disk_min, first.disk_max, first.disk_used_gb_max) == (10, 19, 9)
    second = Rollup.objects.get(node=a, bucket=T0 + timedelta(minutes=5))
    assert (second.cpu_min, second.cpu_max) == (10, 19)
    assert Rollup.objects.get(node=b).cpu_avg == 80.0
    assert actions.rollup(now=T0 + timedelta(minutes=11)) == 0  # nothing new


def test_an_incomplete_bucket_waits_and_gaps_are_skipped():
    node = NodeFactory()
    _samples(node, T0, 4)
    assert actions.rollup(now=T0 + timedelta(minutes=5)) == 0  # still in its lag
    assert actions.rollup(now=T0 + timedelta(minutes=6)) == 1
    _samples(node, T0 + timedelta(days=1), 4)
    assert actions.rollup(now=T0 + timedelta(days=1, minutes=6)) == 1
    assert Rollup.objects.count() == 2


def test_prune_keeps_48_hours_of_samples_and_90_days_of_rollups_in_batches(settings):
    settings.MONITORING_PRUNE_BATCH = 7
    node = NodeFactory()
    now = T0 + timedelta(days=100)
    _samples(node, now - timedelta(hours=49), 30)  # 15 minutes, past 48 h
    _samples(node, now - timedelta(hours=47), 10)
    actions.rollup(now=now)
    Rollup.objects.create(
        node=node,
        bucket=now - timedelta(days=91),
        samples=1,
        **{f"{m}_{k}": 1.0 for m in ("cpu", "memory", "disk") for k in ("min", "avg", "max")},
        disk_used_gb_max=1.0,
    )
    result = actions.prune(now=now)
    assert result == {"samples": 30, "rollups": 1}
    assert Sample.objects.count() == 10
    assert Rollup.objects.filter(bucket__lt=now - timedelta(days=90)).count() == 0
    assert Rollup.objects.count() == 4  # 3 + 1 buckets rolled up before pruning


def test_prune_never_drops_samples_not_yet_rolled_up():
    node = NodeFactory()
    now = T0 + timedelta(days=10)
    _samples(node, now - timedelta(hours=50), 10)
    assert actions.prune(now=now)["samples"] == 0
    actions.rollup(now=now)
    assert actions.prune(now=now)["samples"] == 10


def test_the_beat_task_rolls_up_then_prunes():
    from portal.monitoring.tasks import rollup_and_prune

    node = NodeFactory()
    _samples(node, timezone.now() - timedelta(hours=60), 10)
    rollup_and_prune()
    assert sum(Rollup.objects.values_list("samples", flat=True)) == 10
    assert Sample.objects.count() == 0


# --- the endpoint ---------------------------------------------------------------------------


@pytest.fixture
def operator_api(api):
    from tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    api.force_authenticate(user)
    return api


def test_short_ranges_are_raw_long_ones_are_rollups(operator_api):
    node = NodeFactory()
    now = timezone.now()
    _samples(node, now - timedelta(hours=30), 3)
    _samples(node, now - timedelta(minutes=30), 3)
    actions.rollup(now=now)
    raw = operator_api.get(f"/api/nodes/{node.pk}/metrics?hours=24").json()
    assert raw["resolution"] == "raw" and raw["status"] == "unknown"
    assert [p["cpu_percent"] for p in raw["points"]] == [0, 1, 2]
    day2 = operator_api.get(f"/api/nodes/{node.pk}/metrics?hours=48").json()
    assert day2["resolution"] == "5m"
    assert sum(p["samples"] for p in day2["points"]) == 6
    assert {"cpu_percent_min", "cpu_percent_max", "memory_percent"} <= set(day2["points"][0])
    assert operator_api.get(f"/api/nodes/{node.pk}/metrics").json()["hours"] == 24


@pytest.mark.parametrize("hours", ["0", "2161", "-1", "1.5", "x", "", "٣"])
def test_hours_out_of_range_is_a_400_naming_hours(operator_api, hours):
    node = NodeFactory()
    answer = operator_api.get(f"/api/nodes/{node.pk}/metrics", {"hours": hours})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "hours"


def test_metrics_are_for_operators_and_admins_only(api, user_api):
    node = NodeFactory()
    assert api.get(f"/api/nodes/{node.pk}/metrics").status_code == 401
    assert user_api().get(f"/api/nodes/{node.pk}/metrics").status_code == 403


def test_an_unknown_node_is_404(operator_api):
    assert operator_api.get("/api/nodes/999999/metrics").status_code == 404
