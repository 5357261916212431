"""GET /api/metrics/fleet and portal/fleet/figures.py on known fixtures: counts, money,
usage now and over 30 days, overdue customers, and whose figures a caller gets."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from portal.fleet import figures, histograms
from portal.fleet.actions import usage
from portal.fleet.models import FleetUsageHour
from portal.monitoring.models import Rollup
from tests.fleet.figure_helpers import fleet, member_of, not_a_vm_node, operator, rollups

pytestmark = pytest.mark.django_db
URL = "/api/metrics/fleet"


def get(user_api, user, query=""):
    response = user_api(user).get(URL + query)
    assert response.status_code == 200, response.content
    return response.json()


def test_counts_by_status_tier_and_version(user_api):
    fleet()
    body = get(user_api, operator())
    assert body["scope"] == "fleet"
    assert body["vms"] == {
        "total": 4,
        "by_status": {"online": 2, "offline": 1, "maintenance": 1, "error": 0},
        "by_tier": {"starter": 2, "pro": 1, "enterprise": 1},
        "by_version": {"1.0": 2, "1.1": 1, "unknown": 1},
    }


def test_revenue_cost_and_margin(user_api):
    known = fleet()
    body = get(user_api, operator())
    # Revenue: the active customers' fees (b is overdue): 100 + 1000.
    assert body["revenue"] == {
        "monthly": 1100.0,
        "by_tier": {"starter": 100.0, "pro": 0.0, "enterprise": 1000.0},
    }
    # Cost: each VM at its tier's cost: 2 x 10 + 40 + 200.
    assert body["cost"] == {
        "monthly": 260.0,
        "by_tier": {"starter": 20.0, "pro": 40.0, "enterprise": 200.0},
    }
    assert body["margin"] == {"monthly": 840.0, "percent": 76.4}
    rows = {row["customer_id"]: row for row in body["per_customer"]}
    assert rows[known.a.pk] == {
        "customer_id": known.a.pk,
        "name": known.a.name,
        "tier": "starter",
        "billing_status": "active",
        "vms": 2,
        "running_vms": 1,
        "revenue": 100.0,
        "cost": 20.0,
        "margin": 80.0,
    }
    assert (rows[known.b.pk]["tier"], rows[known.b.pk]["revenue"]) == ("pro", 0.0)
    assert rows[known.b.pk]["margin"] == -40.0
    assert rows[known.c.pk]["margin"] == 800.0


def test_overdue_customers_with_running_vms(user_api):
    known = fleet()
    body = get(user_api, operator())
    assert body["overdue_customers"] == [
        {
            "customer_id": known.b.pk,
            "name": known.b.name,
            "email": known.b.email,
            "monthly_fee": 250.0,
            "running_vms": 1,
        }
    ]


def test_an_overdue_customer_without_running_vms_is_not_listed(user_api):
    known = fleet()
    type(known.b_online).objects.filter(pk=known.b_online.pk).update(maintenance=True)
    assert get(user_api, operator())["overdue_customers"] == []


def test_usage_now_from_the_latest_values_of_the_vms_heard_from(user_api):
    fleet()
    now = get(user_api, operator())["usage"]["now"]
    # a_online (10/20/30) and b_online (50/60/90); the others are not heard from.
    assert now["vms"] == 2
    assert now["cpu_percent"] == {"avg": 30.0, "p95": 48.0}  # 10 + 0.95 x (50 - 10)
    assert now["memory_percent"] == {"avg": 40.0, "p95": 58.0}
    assert now["disk_percent"] == {"avg": 60.0, "p95": 87.0}


def test_usage_over_30_days_from_the_rollups_of_fleet_vms_only(user_api):
    known = fleet()
    hour = usage.hour_start(timezone.now()) - 3 * usage.HOUR
    rollups(known.a_online.pk, hour, 10, 20, 30)
    rollups(known.b_online.pk, hour, 50, 60, 90)
    rollups(known.a_online.pk, hour + usage.HOUR, 20, 20, 30)
    rollups(not_a_vm_node().pk, hour, 99, 99, 99)  # not a VM: not in the fleet's usage
    month = get(user_api, operator(), "?series=hourly")["usage"]["last_30_days"]
    assert month["rollups"] == 36
    assert month["cpu_percent"]["avg"] == pytest.approx(
        (12 * 10 + 12 * 50 + 12 * 20) / 36, abs=0.01
    )
    # 36 values, rank 35 is among the twelve 50s: 50 + (35 - 24) / 12 inside the bin.
    assert month["cpu_percent"]["p95"] == pytest.approx(50.92, abs=0.01)
    assert month["disk_percent"]["p95"] == pytest.approx(90.92, abs=0.01)
    assert [point["cpu_percent"] for point in month["hourly"]] == [30.0, 20.0]
    assert FleetUsageHour.objects.filter(buckets__gt=0).count() == 2  # summed up once


def test_the_hourly_sums_agree_with_the_rollups_they_sum_up():
    known = fleet()
    hour = usage.hour_start(timezone.now()) - 5 * usage.HOUR
    for offset, cpu in enumerate((3.5, 42.0, 77.7, 100.0)):
        rollups(known.a_online.pk, hour + offset * usage.HOUR, cpu, cpu / 2, 12.25)
    rollups(known.b_online.pk, hour + 3 * usage.HOUR, 0.0, 1.0, 2.0)
    assert usage.roll_up_hours(timezone.now()) == 4
    assert usage.roll_up_hours(timezone.now()) == 0  # nothing is summed up twice
    direct = usage.summarize(usage.vm_rollups(Rollup.objects.all()))
    summed = {"cpu": histograms.empty(), "memory": histograms.empty()}
    for row in FleetUsageHour.objects.all():
        summed["cpu"] = histograms.add(summed["cpu"], row.cpu_bins)
        summed["memory"] = histograms.add(summed["memory"], row.memory_bins)
    assert summed["cpu"] == direct["cpu"]["bins"]
    assert summed["memory"] == direct["memory"]["bins"]
    assert sum(row.buckets for row in FleetUsageHour.objects.all()) == direct["buckets"] == 60


def test_an_hour_not_yet_passed_by_the_rollups_is_not_summed_up():
    known = fleet()
    hour = usage.hour_start(timezone.now())
    rollups(known.a_online.pk, hour - usage.HOUR, 10, 10, 10)
    Rollup.objects.filter(
        node_id=known.a_online.pk, bucket__gte=hour - timedelta(minutes=5)
    ).delete()
    assert usage.due_hours(timezone.now()) == []  # its last bucket is not rolled up yet


def test_histogram_percentiles():
    bins = histograms.empty()
    for value in (0.0, 10.2, 10.9, 55.0, 100.0):
        bins[histograms.bin_of(value)] += 1
    assert histograms.percentile(bins, 50) == 11.0  # rank 3: the second of bin 10
    assert histograms.percentile(bins, 95) == 100.0
    assert histograms.percentile(histograms.empty(), 95) is None
    assert histograms.percentile_cont([10.0, 50.0], 95) == 48.0
    assert histograms.percentile_cont([], 95) is None


def test_a_customer_gets_the_figures_of_its_own_vms_only(user_api):
    known = fleet()
    hour = usage.hour_start(timezone.now()) - 2 * usage.HOUR
    rollups(known.a_online.pk, hour, 10, 20, 30)
    rollups(known.b_online.pk, hour, 50, 60, 90)
    body = get(user_api, member_of(known.a, role="member"), "?series=hourly")
    assert body["scope"] == "customer"
    assert body["vms"]["total"] == 2
    assert body["vms"]["by_status"] == {"online": 1, "offline": 1, "maintenance": 0, "error": 0}
    assert body["revenue"]["monthly"] == 100.0
    assert "cost" not in body and "margin" not in body
    assert [row["customer_id"] for row in body["per_customer"]] == [known.a.pk]
    assert set(body["per_customer"][0]) == {
        "customer_id", "name", "tier", "billing_status", "vms", "running_vms", "revenue"
    }  # fmt: skip
    assert body["usage"]["now"]["cpu_percent"] == {"avg": 10.0, "p95": 10.0}
    assert body["usage"]["last_30_days"]["rollups"] == 12
    assert body["usage"]["last_30_days"]["cpu_percent"]["avg"] == 10.0
    assert [point["cpu_percent"] for point in body["usage"]["last_30_days"]["hourly"]] == [10.0]
    assert body["overdue_customers"] == []
    assert known.b.name not in str(body) and known.c.name not in str(body)


def test_an_overdue_customer_sees_itself_and_nobody_else(user_api):
    known = fleet()
    body = get(user_api, member_of(known.b))
    assert [row["customer_id"] for row in body["overdue_customers"]] == [known.b.pk]
    assert body["vms"]["total"] == 1


def test_a_user_of_no_customer_gets_empty_figures(user_api):
    fleet()
    body = get(user_api, None)
    assert body["vms"]["total"] == 0
    assert body["revenue"]["monthly"] == 0.0
    assert body["per_customer"] == []
    assert body["usage"]["now"]["vms"] == 0


def test_admins_get_the_whole_fleet(admin_api):
    fleet()
    body = admin_api.get(URL).json()
    assert body["scope"] == "fleet"
    assert body["vms"]["total"] == 4


def test_anonymous_is_refused(api):
    assert api.get(URL).status_code in (401, 403)


def test_the_path_with_a_trailing_slash_answers_too(user_api):
    fleet()
    assert user_api(operator()).get(URL + "/").status_code == 200


def test_the_beat_task_sums_up_the_hours(settings):
    from portal.fleet import tasks

    known = fleet()
    rollups(known.a_online.pk, usage.hour_start(timezone.now()) - 2 * usage.HOUR, 10, 20, 30)
    assert (
        settings.CELERY_BEAT_SCHEDULE["fleet-usage-hours"]["task"] == tasks.roll_up_usage_hours.name
    )
    assert tasks.roll_up_usage_hours() == 1
    assert FleetUsageHour.objects.get().buckets == 12


def test_the_hourly_series_only_when_asked_and_a_bad_series_is_refused(user_api):
    fleet()
    client = user_api(operator())
    assert "hourly" not in client.get(URL).json()["usage"]["last_30_days"]
    refused = client.get(URL + "?series=daily")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "series"


def test_one_scan_and_one_group_by_per_metric_agree():
    known = fleet()
    hour = usage.hour_start(timezone.now()) - 4 * usage.HOUR
    for offset, cpu in enumerate((3.5, 42.0, 99.9)):
        rollups(known.a_online.pk, hour + offset * usage.HOUR, cpu, 100 - cpu, 50.5)
        rollups(known.b_online.pk, hour + offset * usage.HOUR, cpu / 3, cpu, 0.0)
    rows = usage.vm_rollups(Rollup.objects.all())
    each, once = usage.summarize(rows), usage.summarize_in_one_scan(rows)
    assert once["buckets"] == each["buckets"] == 72
    for metric in histograms.METRICS:
        assert once[metric]["bins"] == each[metric]["bins"]
        assert once[metric]["sum"] == pytest.approx(each[metric]["sum"])


def test_the_30_days_change_as_soon_as_an_hour_is_summed_up(user_api):
    known = fleet()
    client = user_api(operator())
    hour = usage.hour_start(timezone.now()) - 4 * usage.HOUR
    rollups(known.a_online.pk, hour, 10, 20, 30)
    rollups(known.a_online.pk, hour + usage.HOUR, 10, 20, 30)
    first = client.get(URL).json()["usage"]["last_30_days"]
    assert (first["rollups"], first["cpu_percent"]["avg"]) == (24, 10.0)
    with mock.patch.object(figures, "_add_up_hours", side_effect=AssertionError("not cached")):
        assert client.get(URL).json()["usage"]["last_30_days"] == first  # from the cache
    rollups(known.b_online.pk, hour + 2 * usage.HOUR, 40, 20, 30)
    later = client.get(URL).json()["usage"]["last_30_days"]
    assert (later["rollups"], later["cpu_percent"]["avg"]) == (36, 20.0)
