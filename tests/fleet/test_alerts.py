"""The source fleet's alert types on monitoring's evaluator: VM offline after its tier's
hours, API quota from the heartbeat gauges, disk space, maintenance holding a VM's alerts,
and the tier scopes of the rules."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from portal.fleet.actions.tiers import do_save_tier_cost, offline_rule_name, sync_offline_rules
from portal.fleet.models import VM, TierCost
from portal.monitoring.alerts import evaluate_alerts
from portal.monitoring.choices import AlertType, Liveness
from portal.monitoring.models import Alert, AlertRule, NodeLiveness, Sample
from tests.factories import NodeFactory
from tests.fleet.api_helpers import customer, vm

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
HOUR = 3600


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hours_offline(tier: str, hours: int) -> None:
    cost = TierCost.objects.get(tier=tier)
    cost.offline_alert_hours = hours
    do_save_tier_cost(cost)


def down_since(row: VM | NodeLiveness, seconds: float) -> None:
    NodeLiveness.objects.update_or_create(
        node_id=row.pk,
        defaults={"status": Liveness.DOWN, "status_changed_at": at(seconds), "disk_percent": 10},
    )


def open_types(row) -> list[str]:
    return sorted(
        Alert.objects.filter(node_id=row.pk, resolved=False).values_list("type", flat=True)
    )


def test_the_migrations_give_every_tier_a_cost_and_an_offline_rule():
    assert sorted(TierCost.objects.values_list("tier", "offline_alert_hours")) == [
        ("enterprise", 24),
        ("pro", 24),
        ("starter", 24),
    ]
    rule = AlertRule.objects.get(name=offline_rule_name("pro"))
    assert (rule.metric, rule.for_seconds, rule.scope, rule.alert_type) == (
        "down",
        24 * HOUR,
        "fleet.tier.pro",
        "vm_offline",
    )
    assert AlertRule.objects.get(name="Node down").scope == "fleet.not_vm"
    quota = AlertRule.objects.get(name="API quota")
    assert (quota.metric, quota.threshold, quota.clear_threshold) == ("api_calls/api_quota", 90, 80)


def test_a_vm_is_offline_after_its_own_tiers_hours():
    hours_offline("starter", 2)
    hours_offline("pro", 48)
    someone = customer()
    starter, pro = vm(someone, tier="starter"), vm(someone, tier="pro")
    down_since(starter, -3 * HOUR)
    down_since(pro, -3 * HOUR)
    evaluate_alerts(at(0))
    assert open_types(starter) == [AlertType.VM_OFFLINE]
    assert open_types(pro) == []  # 3 h of its 48
    alert = Alert.objects.get(node_id=starter.pk)
    assert "VM offline (Starter)" in alert.message and alert.severity == "high"
    evaluate_alerts(at(45 * HOUR))
    assert open_types(pro) == [AlertType.VM_OFFLINE]  # 48 h down


def test_a_vm_is_not_offline_before_its_tiers_hours_nor_by_the_5_minute_node_rule():
    hours_offline("enterprise", 4)
    row = vm(customer(), tier="enterprise")
    down_since(row, -(4 * HOUR - 1))
    evaluate_alerts(at(0))
    assert open_types(row) == []  # the 5-minute "Node down" leaves the fleet's VMs alone
    evaluate_alerts(at(1))
    assert open_types(row) == [AlertType.VM_OFFLINE]


def test_other_nodes_keep_the_5_minute_node_rule():
    other = NodeFactory()
    down_since(other, -301)
    evaluate_alerts(at(0))
    assert open_types(other) == [AlertType.VM_OFFLINE]
    assert Alert.objects.get(node_id=other.pk).rule.name == "Node down"


def test_saving_a_tier_cost_moves_its_rule_and_keeps_what_admins_changed():
    rule = AlertRule.objects.get(name=offline_rule_name("starter"))
    AlertRule.objects.filter(pk=rule.pk).update(severity="warning", enabled=False)
    hours_offline("starter", 6)
    rule.refresh_from_db()
    assert (rule.for_seconds, rule.severity, rule.enabled) == (6 * HOUR, "warning", False)


def test_the_rules_are_made_again_if_deleted():
    AlertRule.objects.filter(name__startswith="VM offline").delete()
    assert [rule.for_seconds for rule in sync_offline_rules()] == [24 * HOUR] * 3


def beat_gauges(row, when, **gauges):
    NodeLiveness.objects.update_or_create(
        node_id=row.pk, defaults={"status": Liveness.UP, "disk_percent": 10, "cpu_percent": 5}
    )
    Sample.objects.create(
        node_id=row.pk,
        at=when,
        cpu_percent=5,
        memory_percent=5,
        disk_percent=10,
        disk_used_gb=1,
        gauges=gauges,
    )


def test_api_quota_fires_at_90_percent_of_the_quota_and_clears_under_80():
    row = vm(customer())
    beat_gauges(row, at(0), api_calls=899, api_quota=1000)
    evaluate_alerts(at(1))
    assert open_types(row) == []
    beat_gauges(row, at(10), api_calls=950, api_quota=1000)
    evaluate_alerts(at(11))
    assert open_types(row) == [AlertType.API_QUOTA]
    assert Alert.objects.get(node_id=row.pk).fired_value == 95.0
    beat_gauges(row, at(20), api_calls=850, api_quota=1000)  # between: still firing
    evaluate_alerts(at(21))
    assert open_types(row) == [AlertType.API_QUOTA]
    beat_gauges(row, at(30), api_calls=700, api_quota=1000)
    evaluate_alerts(at(31))
    assert open_types(row) == [AlertType.API_QUOTA]  # keeps firing 5 minutes after it cleared
    beat_gauges(row, at(330), api_calls=700, api_quota=1000)
    evaluate_alerts(at(331))
    assert open_types(row) == []


@pytest.mark.parametrize(
    "gauges",
    [{"api_calls": 5}, {"api_calls": 5, "api_quota": 0}, {"api_calls": "x", "api_quota": 1}],
)
def test_api_quota_needs_both_gauges_and_a_quota(gauges):
    row = vm(customer())
    beat_gauges(row, at(0), **gauges)
    evaluate_alerts(at(1))
    assert open_types(row) == []


def test_maintenance_holds_a_vms_alerts_until_it_ends():
    hours_offline("starter", 1)
    row = vm(customer(), tier="starter", maintenance=True)
    down_since(row, -2 * HOUR)
    NodeLiveness.objects.filter(node_id=row.pk).update(disk_percent=95)
    evaluate_alerts(at(0))
    assert open_types(row) == []
    VM.objects.filter(pk=row.pk).update(maintenance=False)
    evaluate_alerts(at(10))
    assert open_types(row) == [AlertType.VM_OFFLINE]  # still down: it fires at once


def test_maintenance_holds_disk_space_too_and_releases_it():
    row = vm(customer(), maintenance=True)
    NodeLiveness.objects.create(node_id=row.pk, status=Liveness.UP, disk_percent=95)
    evaluate_alerts(at(0))
    assert open_types(row) == []
    VM.objects.filter(pk=row.pk).update(maintenance=False)
    evaluate_alerts(at(10))
    assert open_types(row) == [AlertType.DISK_SPACE]


def test_a_rule_names_a_registered_scope_or_none():
    rule = AlertRule(name="x", metric="disk_percent", threshold=80, scope="fleet.tier.gold")
    with pytest.raises(ValidationError) as error:
        rule.full_clean()
    assert "scope" in error.value.message_dict
    rule.scope = "fleet.tier.pro"
    rule.full_clean()


@pytest.mark.parametrize(
    ("metric", "valid"), [("api_calls/api_quota", True), ("a/b/c", False), ("/x", False)]
)
def test_a_rule_on_a_ratio_of_two_gauges(metric, valid):
    rule = AlertRule(name="x", metric=metric, threshold=90)
    if valid:
        rule.full_clean()
    else:
        with pytest.raises(ValidationError):
            rule.full_clean()


def test_the_tier_cost_admin_saves_the_cost_and_moves_the_rule(admin_user):
    from django.test import Client

    client = Client()
    client.force_login(admin_user)
    cost = TierCost.objects.get(tier="pro")
    url = f"/admin/fleet/tiercost/{cost.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and "VM offline (Pro)" in page.content.decode()
    response = client.post(url, {"monthly_cost": "42.50", "offline_alert_hours": "3"})
    assert response.status_code == 302, response.content.decode()[:2000]
    cost.refresh_from_db()
    assert (str(cost.monthly_cost), cost.offline_alert_hours) == ("42.50", 3)
    assert AlertRule.objects.get(name="VM offline (Pro)").for_seconds == 3 * HOUR
    refused = client.post(url, {"monthly_cost": "-1", "offline_alert_hours": "0"})
    assert refused.status_code == 200  # the form again, with the fields' errors
    assert AlertRule.objects.get(name="VM offline (Pro)").for_seconds == 3 * HOUR
    assert (
        client.post(f"/admin/fleet/tiercost/{cost.pk}/delete/", {"post": "yes"}).status_code == 403
    )
