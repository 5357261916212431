"""Sample data: POST /api/seed-test-data (DEBUG only) and manage.py seed_fleet, one action."""

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from portal.accounts.models import Customer
from portal.fleet import selectors
from portal.fleet.choices import FleetTier, VMStatus
from portal.fleet.models import VM, TierCost, Update
from portal.monitoring.models import Rollup, Sample

pytestmark = pytest.mark.django_db


def test_without_debug_the_path_does_not_exist(admin_api, settings):
    settings.DEBUG = False
    response = admin_api.post("/api/seed-test-data")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert APIClient().post("/api/seed-test-data").status_code == 404  # not even a 401
    assert not VM.objects.exists()


def test_with_debug_admins_seed_and_a_second_call_adds_nothing(admin_api, settings):
    settings.DEBUG = True
    first = admin_api.post("/api/seed-test-data")
    assert first.status_code == 200, first.json()
    made = first.json()
    assert made["customers"] == 6 and made["vms"] == 12 and made["tier_costs"] == 3
    assert made["samples"] == Sample.objects.count() > 0
    again = admin_api.post("/api/seed-test-data").json()
    assert set(again.values()) == {0}
    assert VM.objects.count() == 12 and Customer.objects.count() == 6


def test_only_admins_may_seed(user_api, settings):
    settings.DEBUG = True
    assert user_api().post("/api/seed-test-data").status_code == 403
    assert not VM.objects.exists()


def test_the_command_makes_the_same_fleet_once():
    out = StringIO()
    call_command("seed_fleet", stdout=out)
    assert "12 vms" in out.getvalue()
    call_command("seed_fleet", stdout=StringIO())
    assert VM.objects.count() == 12
    tiers = {selectors.fleet_tier(c.plan.tier) for c in Customer.objects.select_related("plan")}
    assert tiers == set(FleetTier.values)
    statuses = {row.status for row in selectors.vms_with_status(VM.objects.all())}
    assert statuses == set(VMStatus.values)  # every status shows up
    versions = {row.version for row in selectors.vms_with_status(VM.objects.all())}
    assert versions == {"1.4.2", "1.5.0"}
    assert TierCost.objects.count() == 3 and Update.objects.filter(version="1.5.0").exists()
    assert Rollup.objects.exists()


def test_seeded_vms_have_metrics_for_a_day_and_a_week(admin_api):
    call_command("seed_fleet", stdout=StringIO())
    target = VM.objects.first()
    day = admin_api.get(f"/api/vms/{target.pk}/metrics?hours=24")
    week = admin_api.get(f"/api/vms/{target.pk}/metrics?hours=168")
    assert (day["X-Resolution"], week["X-Resolution"]) == ("raw", "5m")
    assert len(day.json()) >= 100 and len(week.json()) >= 160
