"""The alert evaluator over the database: rows in, alerts out, on a controlled clock."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.monitoring import tasks
from portal.monitoring.alerts import evaluate_alerts
from portal.monitoring.choices import AlertType, Liveness
from portal.monitoring.models import Alert, AlertRule, AlertState, NodeLiveness, Sample
from portal.nodes.models import NodeGroup
from tests.factories import NodeFactory

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def at(seconds):
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def defaults():
    """The migration's default rules, by name."""
    return {rule.name: rule for rule in AlertRule.objects.all()}


def node_with(status=Liveness.UP, node=None, **values):
    values = {"cpu_percent": 10, "memory_percent": 20, "disk_percent": 30, "load1": 0.1, **values}
    return NodeLiveness.objects.create(
        node=node or NodeFactory(), status=status, status_changed_at=at(0), **values
    )


def set_values(row, **values):
    NodeLiveness.objects.filter(pk=row.pk).update(**values)


def open_alerts(node=None):
    rows = Alert.objects.filter(resolved=False)
    return list(rows.filter(node=node.node_id) if node else rows)


def test_the_migration_adds_the_default_rules(defaults):
    monitoring = {"Node down", "Disk space", "Memory", "Unusual API calls", "API quota"}
    fleet = {"VM offline (Starter)", "VM offline (Pro)", "VM offline (Enterprise)"}
    assert set(defaults) == monitoring | fleet
    down, disk, memory = defaults["Node down"], defaults["Disk space"], defaults["Memory"]
    assert (down.metric, down.for_seconds, down.severity) == ("down", 300, "high")
    assert (disk.threshold, disk.clear_threshold, disk.comparison) == (80, 75, ">=")
    assert (memory.threshold, memory.for_seconds) == (90, 600)


def test_disk_fires_at_80_and_clears_below_75(defaults):
    row = node_with(disk_percent=79)
    assert evaluate_alerts(at(0))["fired"] == 0
    set_values(row, disk_percent=81)
    assert evaluate_alerts(at(10))["fired"] == 1
    (alert,) = open_alerts(row)
    assert (alert.type, alert.severity, alert.rule, alert.fired_value) == (
        AlertType.DISK_SPACE,
        "warning",
        defaults["Disk space"],
        81,
    )
    assert alert.created_at == at(10)
    set_values(row, disk_percent=77)
    evaluate_alerts(at(20))
    assert evaluate_alerts(at(30))["fired"] == 0  # one open alert, not one per pass
    (alert,) = open_alerts(row)
    assert alert.last_value == 81  # not rewritten every pass; set again when it resolves
    set_values(row, disk_percent=74)
    assert evaluate_alerts(at(40))["resolved"] == 1
    alert.refresh_from_db()
    assert alert.resolved and alert.resolved_at == at(40) and alert.last_value == 74
    # the pair remembers its flips for the flapping window, then keeps no row
    assert AlertState.objects.get().flips
    evaluate_alerts(at(40 + 3600))
    assert not AlertState.objects.exists()


def test_memory_fires_after_its_for(defaults):
    row = node_with(memory_percent=95)
    evaluate_alerts(at(0))
    evaluate_alerts(at(599))
    assert not open_alerts(row)
    evaluate_alerts(at(600))
    assert [a.type for a in open_alerts(row)] == [AlertType.MEMORY]


def test_down_fires_five_minutes_after_the_node_went_down(defaults):
    row = node_with(status=Liveness.DOWN, disk_percent=95)
    NodeLiveness.objects.filter(pk=row.pk).update(status_changed_at=at(-299))
    evaluate_alerts(at(0))
    assert not open_alerts(row)  # down 299 s; the disk alert is inhibited while down
    evaluate_alerts(at(1))
    assert [a.type for a in open_alerts(row)] == [AlertType.VM_OFFLINE]
    set_values(row, status=Liveness.UP, status_changed_at=at(30))
    evaluate_alerts(at(30))
    # back up: the down alert resolves and the disk alert it held back is raised
    assert [a.type for a in open_alerts(row)] == [AlertType.DISK_SPACE]
    assert Alert.objects.get(type=AlertType.VM_OFFLINE).resolved_at == at(30)


def test_scope_by_group_and_purpose(defaults):
    AlertRule.objects.update(enabled=False)
    group = NodeGroup.objects.create(name="site-a", queue="site-a")
    inside = node_with(node=NodeFactory(group=group, purpose="lab_server"), cpu_percent=99)
    other_group = node_with(node=NodeFactory(purpose="lab_server"), cpu_percent=99)
    other_purpose = node_with(node=NodeFactory(group=group, purpose="fleet_host"), cpu_percent=99)
    AlertRule.objects.create(
        name="cpu", metric="cpu_percent", threshold=90, group=group, purpose="lab_server"
    )
    evaluate_alerts(at(0))
    assert [a.node_id for a in open_alerts()] == [inside.node_id]
    assert not open_alerts(other_group) and not open_alerts(other_purpose)


def test_a_rule_on_an_extra_gauge_reads_the_latest_sample(defaults):
    AlertRule.objects.update(enabled=False)
    row = node_with()
    AlertRule.objects.create(
        name="quota", metric="api_calls", threshold=1000, alert_type=AlertType.API_QUOTA
    )
    sample = {"cpu_percent": 1, "memory_percent": 1, "disk_percent": 1, "disk_used_gb": 1}
    Sample.objects.create(node_id=row.node_id, at=at(-20), gauges={"api_calls": 2000}, **sample)
    Sample.objects.create(node_id=row.node_id, at=at(-5), gauges={"api_calls": 10}, **sample)
    evaluate_alerts(at(0))
    assert not open_alerts(row)  # the latest is 10
    Sample.objects.create(node_id=row.node_id, at=at(5), gauges={"api_calls": 1500}, **sample)
    evaluate_alerts(at(10))
    (alert,) = open_alerts(row)
    assert (alert.type, alert.fired_value) == (AlertType.API_QUOTA, 1500)


def test_flapping_is_one_alert_not_a_storm(defaults, settings):
    settings.MONITORING_ALERT_FLAP_FLIPS = 4
    settings.MONITORING_ALERT_FLAP_WINDOW = 600
    row = node_with()
    for step, disk in enumerate([90, 50, 90, 50, 90, 50, 90, 50]):
        set_values(row, disk_percent=disk)
        evaluate_alerts(at(step * 30))
    alerts = list(Alert.objects.filter(node_id=row.node_id).order_by("id"))
    # fire, resolve, fire; the 4th flip turns the pair into one flapping alert
    assert [(a.type, a.resolved) for a in alerts] == [
        (AlertType.DISK_SPACE, True),
        (AlertType.FLAPPING, False),
    ]
    # quiet for a window (last flip at 210 s): the flapping alert resolves
    evaluate_alerts(at(700))
    assert open_alerts(row)
    evaluate_alerts(at(811))
    assert not open_alerts(row)
    assert Alert.objects.filter(node_id=row.node_id).count() == 2


def test_a_disabled_node_or_rule_raises_nothing(defaults):
    node_with(node=NodeFactory(enabled=False), disk_percent=99)
    assert evaluate_alerts(at(0))["fired"] == 0
    AlertRule.objects.update(enabled=False)
    node_with(disk_percent=99)
    assert evaluate_alerts(at(0))["fired"] == 0


def test_queries_per_pass_do_not_grow_with_the_nodes(defaults):
    for _ in range(30):
        node_with(disk_percent=95)
    with CaptureQueriesContext(connection) as first:
        assert evaluate_alerts(at(0))["fired"] == 30
    for _ in range(60):
        node_with(disk_percent=95)
    with CaptureQueriesContext(connection) as second:
        assert evaluate_alerts(at(10))["fired"] == 60
    # 16, the down groups' aggregate, the open group alerts (no group is down), whether
    # the baseline rule's metric has baselines (none: that rule is skipped), the API quota
    # rule's latest gauges, and the fleet's rule scopes and maintenance hold (one each)
    assert len(first) == len(second) <= 25, [q["sql"][:60] for q in second]
    with CaptureQueriesContext(connection) as batched:
        evaluate_alerts(at(20), batch=10)
    # 9 batches of 10 (and the empty read that ends the pass): a handful of queries each
    assert len(batched) <= 9 * 7 + 15


def test_one_open_alert_per_rule_and_node_is_a_constraint(defaults):
    row = node_with()
    rule = defaults["Disk space"]
    Alert.objects.create(rule=rule, node_id=row.node_id, type="disk_space", severity="warning")
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(rule=rule, node_id=row.node_id, type="disk_space", severity="info")
    Alert.objects.create(node_id=row.node_id, type="other", severity="info", message="by hand")
    Alert.objects.create(node_id=row.node_id, type="other", severity="info", message="again")


def test_rule_validation_names_the_clear_threshold():
    rule = AlertRule(name="bad", metric="disk_percent", threshold=80, clear_threshold=85)
    with pytest.raises(ValidationError) as error:
        rule.full_clean()
    assert "clear_threshold" in error.value.message_dict
    AlertRule(name="good", metric="disk_percent", threshold=80, clear_threshold=75).full_clean()


def test_metrics_count_open_alerts_by_severity(defaults, client, settings):
    settings.METRICS_OPEN = True
    row = node_with(disk_percent=99)
    evaluate_alerts(at(0))
    Alert.objects.create(type="other", severity="high", message="m", resolved=True)
    body = client.get("/metrics").content.decode()
    assert 'portal_alerts_open{severity="warning"} 1.0' in body
    assert 'portal_alerts_open{severity="high"} 0.0' in body
    assert row


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="concurrent inserts: PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_two_evaluators_raise_one_alert_per_rule_and_node():
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="disk", metric="disk_percent", threshold=80, clear_threshold=75)
    rows = [node_with(disk_percent=95) for _ in range(200)]
    start = threading.Barrier(2)
    errors = []

    def evaluator():
        try:
            start.wait()
            for step in range(3):
                evaluate_alerts(at(step), batch=50)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Alert.objects.count() == len(rows)
    assert sorted(Alert.objects.values_list("node_id", flat=True)) == sorted(
        row.node_id for row in rows
    )


def test_an_alert_resolved_by_hand_is_not_raised_again_until_it_clears(defaults):
    from portal.monitoring.alerts import do_resolve_alert

    row = node_with(disk_percent=90)
    evaluate_alerts(at(0))
    (alert,) = open_alerts(row)
    do_resolve_alert(alert.pk, now=at(5))
    evaluate_alerts(at(10))
    assert not open_alerts(row)
    set_values(row, disk_percent=50)
    evaluate_alerts(at(20))
    set_values(row, disk_percent=90)
    evaluate_alerts(at(30))
    assert len(open_alerts(row)) == 1


def test_alerts_of_a_disabled_rule_or_node_resolve(defaults):
    disk, other = node_with(disk_percent=95), node_with(memory_percent=99, disk_percent=95)
    evaluate_alerts(at(0))
    evaluate_alerts(at(600))
    assert len(open_alerts()) == 3
    defaults["Memory"].enabled = False
    defaults["Memory"].save()
    evaluate_alerts(at(610))
    assert sorted(a.type for a in open_alerts()) == ["disk_space", "disk_space"]
    assert not AlertState.objects.filter(rule=defaults["Memory"]).exists()
    disk.node.enabled = False
    disk.node.save()
    result = evaluate_alerts(at(620))
    assert result["resolved"] == 1
    assert [a.node_id for a in open_alerts()] == [other.node_id]
    assert not AlertState.objects.filter(node_id=disk.node_id).exists()
    assert Alert.objects.get(node_id=disk.node_id, type="disk_space").resolved_at == at(620)
    other.node.delete()  # its liveness row and alerts go with it; its states go at the next pass
    assert AlertState.objects.filter(node_id=other.node_id).exists()
    evaluate_alerts(at(630))
    assert not AlertState.objects.exists()


def test_the_admin_form_names_a_clear_threshold_on_the_wrong_side(admin_client):
    body = {
        "name": "disk 2",
        "kind": "threshold",
        "metric": "disk_percent",
        "comparison": ">=",
        "threshold": "80",
        "clear_threshold": "85",
        "for_seconds": "0",
        "keep_firing_for_seconds": "0",
        "severity": "warning",
        "alert_type": "disk_space",
        "purpose": "",
        "min_spread": "1",
        "enabled": "on",
    }
    response = admin_client.post("/admin/monitoring/alertrule/add/", body)
    assert response.status_code == 200
    assert "clear_threshold" in response.context["adminform"].form.errors
    assert not AlertRule.objects.filter(name="disk 2").exists()
    body["clear_threshold"] = "75"
    assert admin_client.post("/admin/monitoring/alertrule/add/", body).status_code == 302
    assert AlertRule.objects.get(name="disk 2").clear_at == 75


def test_a_flapping_pair_that_settles_firing_becomes_the_rules_alert_again(defaults, settings):
    settings.MONITORING_ALERT_FLAP_FLIPS = 4
    settings.MONITORING_ALERT_FLAP_WINDOW = 600
    row = node_with()
    for step, disk in enumerate([90, 50, 90, 50, 90]):
        set_values(row, disk_percent=disk)
        evaluate_alerts(at(step * 30))
    (alert,) = open_alerts(row)
    assert alert.type == AlertType.FLAPPING and alert.message.startswith("Flapping: ")
    evaluate_alerts(at(120 + 601))  # still >= 80, no flip for a window
    (again,) = open_alerts(row)
    assert again.pk == alert.pk and again.type == AlertType.DISK_SPACE
    assert not again.message.startswith("Flapping")


def test_the_liveness_tick_raises_the_down_alert_of_the_nodes_it_took_down(defaults):
    AlertRule.objects.filter(pk=defaults["Node down"].pk).update(for_seconds=0)
    now = timezone.now()
    overdue = node_with(Liveness.UP, next_due_at=now - timedelta(seconds=1), disk_percent=95)
    fine = node_with(Liveness.UP, next_due_at=now + timedelta(minutes=5), disk_percent=95)
    tasks.evaluate_liveness()
    assert NodeLiveness.objects.get(pk=overdue.pk).status == Liveness.DOWN
    assert [(a.type, a.node_id) for a in open_alerts()] == [(AlertType.VM_OFFLINE, overdue.node_id)]
    assert not AlertState.objects.filter(node_id=fine.node_id).exists()  # not evaluated here


def site_with(count, name="site-a"):
    group = NodeGroup.objects.create(name=name, queue=name)
    return group, [node_with(node=NodeFactory(group=group)) for _ in range(count)]


def take_down(rows, seconds):
    for row in rows:
        set_values(row, status=Liveness.DOWN, status_changed_at=at(seconds))


def test_a_down_site_is_one_alert_and_holds_its_nodes_down_alerts(defaults, settings):
    settings.MONITORING_GROUP_DOWN_MIN_NODES = 3
    settings.MONITORING_GROUP_DOWN_PERCENT = 50
    group, rows = site_with(5)
    lone = node_with()  # a node of no group: its own down alert as always
    take_down(rows[:2], 0)  # 2 of 5: not the site yet
    take_down(rows[2:4], 20)  # 4 of 5 from t=20: the site is down since then
    take_down([lone], 0)
    evaluate_alerts(at(300))
    assert [a.node_id for a in open_alerts()] == [lone.node_id]  # the site's 300 s is at 320
    evaluate_alerts(at(320))
    (site,) = Alert.objects.filter(resolved=False, group=group)
    assert site.node_id is None and site.rule == defaults["Node down"]
    assert site.type == AlertType.VM_OFFLINE and site.severity == "high"
    assert site.message.startswith("Group site-a is down: 4 of 5 nodes are down.")
    assert site.created_at == at(320) and site.fired_value == 4
    assert not Alert.objects.filter(node__group=group).exists()  # held, not raised
    evaluate_alerts(at(330))
    assert Alert.objects.filter(group=group).count() == 1  # not one per pass

    # The site's link is back except for one node: the site resolves, that node's own down
    # alert (down since t=0, held until now) is raised at once.
    for row in rows[1:4]:
        set_values(row, status=Liveness.UP, status_changed_at=at(400))
    evaluate_alerts(at(400))
    site.refresh_from_db()
    assert site.resolved and site.resolved_at == at(400)
    assert {a.node_id for a in open_alerts()} == {lone.node_id, rows[0].node_id}


def test_a_group_needs_its_minimum_of_down_nodes(defaults, settings):
    settings.MONITORING_GROUP_DOWN_MIN_NODES = 3
    settings.MONITORING_GROUP_DOWN_PERCENT = 50
    group, rows = site_with(2)
    take_down(rows, 0)  # 2 of 2 is all of it, but fewer than 3 nodes: each is its own alert
    evaluate_alerts(at(300))
    assert {a.node_id for a in open_alerts()} == {row.node_id for row in rows}
    assert not Alert.objects.filter(group=group).exists()


def test_a_down_rule_scoped_to_another_group_raises_no_site_alert(defaults, settings):
    settings.MONITORING_GROUP_DOWN_MIN_NODES = 2
    down = defaults["Node down"]
    elsewhere = NodeGroup.objects.create(name="site-b", queue="site-b")
    AlertRule.objects.filter(pk=down.pk).update(group=elsewhere)
    _, rows = site_with(2)
    take_down(rows, 0)
    evaluate_alerts(at(600))
    assert not open_alerts()  # the only down rule watches site-b


def test_a_site_alert_is_notified_to_its_groups_channel(defaults, settings):
    from portal.monitoring.models import Notification, NotificationChannel

    settings.MONITORING_GROUP_DOWN_MIN_NODES = 2
    group, rows = site_with(2)
    other = NodeGroup.objects.create(name="site-c", queue="site-c")
    mine = NotificationChannel.objects.create(
        name="site-a ops", kind="webhook", url="http://127.0.0.1:9/", group=group
    )
    NotificationChannel.objects.create(
        name="site-c ops", kind="webhook", url="http://127.0.0.1:9/", group=other
    )
    take_down(rows, 0)
    evaluate_alerts(at(300))
    site = Alert.objects.get(group=group)
    assert list(Notification.objects.values_list("channel", "alert", "event")) == [
        (mine.pk, site.pk, "fired")
    ]
    for row in rows:
        set_values(row, status=Liveness.UP, status_changed_at=at(310))
    evaluate_alerts(at(310))
    assert Notification.objects.filter(event="resolved", alert=site, channel=mine).count() == 1


def _random_fleet_run(seed):
    """A fleet with random values and downs, evaluated over 10 passes with the values moving;
    returns what the alerts and pair states ended as."""
    import random

    rng = random.Random(seed)
    rows = [
        node_with(
            status=rng.choice([Liveness.UP] * 9 + [Liveness.DOWN]),
            disk_percent=rng.uniform(60, 95),
            memory_percent=rng.uniform(70, 99),
        )
        for _ in range(60)
    ]
    for step in range(10):
        for row in rng.sample(rows, 20):
            set_values(row, disk_percent=rng.uniform(60, 95), memory_percent=rng.uniform(70, 99))
        evaluate_alerts(at(step * 120))
    alerts = sorted(
        (a.rule_id, a.node_id - rows[0].node_id, a.resolved, a.created_at, a.resolved_at)
        for a in Alert.objects.all()
    )
    states = sorted(
        (s.rule_id, s.node_id - rows[0].node_id, s.firing, s.pending_since, s.clearing_since)
        for s in AlertState.objects.all()
    )
    return alerts, states


def test_reading_only_candidate_rows_decides_as_reading_every_row(defaults, monkeypatch):
    from portal.monitoring import alerts

    filtered = _random_fleet_run(7)
    assert filtered[0] and filtered[1]  # the scenario raises and clears alerts
    Alert.objects.all().delete()
    AlertState.objects.all().delete()
    NodeLiveness.objects.all().delete()
    monkeypatch.setattr(alerts, "_candidates", lambda rules, now: None)
    assert _random_fleet_run(7) == filtered
