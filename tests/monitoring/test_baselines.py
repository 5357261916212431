"""Baseline rules ("unusual activity"): gauges rolled up, a node's usual value per hour of
the week from its rollups, and the evaluator firing when a value is far from it."""

from datetime import UTC, datetime, timedelta

import pytest

from portal.monitoring import actions, baselines, tasks
from portal.monitoring.alerts import evaluate_alerts
from portal.monitoring.choices import AlertType, Liveness
from portal.monitoring.models import Alert, AlertRule, Baseline, NodeLiveness, Rollup, Sample
from portal.monitoring.rules import rule_errors
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db

# A Monday, 03:00 UTC: hour of the week 3.
NOW = datetime(2026, 11, 30, 3, 10, tzinfo=UTC)
FIVE = timedelta(minutes=5)
VALUES = {"cpu_percent": 5, "memory_percent": 20, "disk_percent": 30, "disk_used_gb": 3}


def rollups(node, weeks, per_hour=12, value=lambda week, i: 100.0, hour=NOW):
    """Rollups of ``node`` in the hour of the week of ``hour``, ``weeks`` weeks back."""
    start = baselines.hour_start(hour)
    for week in range(1, weeks + 1):
        for i in range(per_hour):
            avg = value(week, i)
            Rollup.objects.create(
                node=node,
                bucket=start - timedelta(days=7 * week) + i * FIVE,
                samples=10,
                **{f"{m}_{k}": 10.0 for m in ("cpu", "memory", "disk") for k in ("min", "max")},
                cpu_avg=avg,
                memory_avg=20.0,
                disk_avg=30.0,
                disk_used_gb_max=3.0,
                gauges={"api_calls": avg},
            )


def beat(node, at, **gauges):
    Sample.objects.create(node_id=node.pk, at=at, gauges=gauges or None, **VALUES)


def test_a_rollup_averages_each_gauge_of_its_samples():
    node = NodeFactory()
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    beat(node, start, api_calls=10, queue=1)
    beat(node, start + timedelta(seconds=30), api_calls=30)
    beat(node, start + timedelta(seconds=60))  # no gauges: not counted in their averages
    actions.rollup_bucket(start)
    rollup = Rollup.objects.get(node=node)
    assert rollup.samples == 3 and rollup.gauges == {"api_calls": 20.0, "queue": 1.0}


def test_the_usual_value_is_the_same_hour_of_the_last_weeks():
    node, young, other_hour = NodeFactory(), NodeFactory(), NodeFactory()
    # 4 weeks x 12 rollups alternating 90 and 110: mean 100, deviation 10
    rollups(node, 4, value=lambda week, i: 90.0 if i % 2 else 110.0)
    rollups(young, 1)  # 12 rollups: under MONITORING_BASELINE_MIN_BUCKETS (24)
    rollups(other_hour, 4, hour=NOW + timedelta(hours=1))  # Monday 04:00: not this hour
    Baseline.objects.create(
        node=node, metric="api_calls", hour_of_week=2, mean=1, deviation=1, buckets=1,
        computed_at=NOW - timedelta(hours=1),
    )  # fmt: skip
    assert baselines.compute(NOW, {"api_calls", "cpu_percent"}) == 2
    rows = {(b.metric, b.node_id): b for b in Baseline.objects.all()}
    assert set(rows) == {("api_calls", node.pk), ("cpu_percent", node.pk)}  # hour 2 is gone
    for row in rows.values():
        assert (row.hour_of_week, row.buckets, row.computed_at) == (3, 48, NOW)
        assert row.mean == pytest.approx(100) and row.deviation == pytest.approx(10)


def test_the_beat_computes_each_hour_once(monkeypatch):
    node = NodeFactory()
    rollups(node, 2)
    assert baselines.compute_if_due(NOW) == 1  # the default "Unusual API calls" rule
    assert baselines.compute_if_due(NOW + timedelta(minutes=40)) is None
    assert baselines.compute_if_due(NOW + timedelta(hours=1)) == 0  # no history at 04:00
    AlertRule.objects.filter(kind="baseline").update(enabled=False)
    assert baselines.compute_if_due(NOW + timedelta(hours=2)) is None
    calls = []
    monkeypatch.setattr(baselines, "compute_if_due", calls.append)
    tasks.rollup_and_prune()  # after the rollups it was given
    assert len(calls) == 1


def test_spread_has_floors():
    assert baselines.spread(100, 2, 1) == 10  # 10 % of the usual value
    assert baselines.spread(0.5, 0, 1) == 1  # the rule's min_spread
    assert baselines.spread(100, 30, 1) == 30
    assert baselines.score(130, 100, 5, 1) == pytest.approx(3.0)
    assert baselines.score(70, 100, 5, 1) == pytest.approx(-3.0)


@pytest.fixture
def unusual():
    """Only the default baseline rule: api_calls >= 4 spreads for 15 min, clears < 2 for 5."""
    AlertRule.objects.exclude(name="Unusual API calls").update(enabled=False)
    return AlertRule.objects.get(name="Unusual API calls")


def watched_node():
    node = NodeFactory()
    NodeLiveness.objects.create(node=node, status=Liveness.UP, status_changed_at=NOW, **VALUES)
    return node


def at(seconds):
    return NOW + timedelta(seconds=seconds)


def beat_then_evaluate(node, seconds, api_calls):
    """A heartbeat carrying ``api_calls`` then an alert pass, ``seconds`` after NOW."""
    beat(node, at(seconds), api_calls=api_calls)
    evaluate_alerts(at(seconds))


def test_unusual_api_calls_fire_after_15_minutes_and_clear(unusual):
    node = watched_node()
    rollups(node, 4, value=lambda week, i: 90.0 if i % 2 else 110.0)  # usual 100 +- 10
    baselines.compute(NOW)
    beat_then_evaluate(node, 0, 130)  # 3 spreads: not unusual enough
    assert not Alert.objects.exists()
    for seconds in range(30, 930, 30):  # 90 spreads from t=30
        beat_then_evaluate(node, seconds, 1000)
    assert not Alert.objects.exists()  # held since t=30: fires at t=930
    beat_then_evaluate(node, 930, 1000)
    (alert,) = Alert.objects.filter(resolved=False)
    assert (alert.type, alert.rule, alert.node_id) == (AlertType.UNUSUAL_ACTIVITY, unusual, node.pk)
    assert alert.created_at == at(930) and alert.fired_value == pytest.approx(90.0)
    assert "api_calls is unusual for this hour of the week, +90.0 spreads" in alert.message
    # 125 is 2.5 spreads: between clear (< 2) and fire (>= 4), so it stays open
    for seconds in range(960, 1560, 30):
        beat_then_evaluate(node, seconds, 125)
    assert Alert.objects.filter(resolved=False).exists()
    for seconds in range(1560, 1860, 30):  # 0.5 spreads, for keep_firing_for (300 s)
        beat_then_evaluate(node, seconds, 105)
    assert Alert.objects.filter(resolved=False).exists()
    beat_then_evaluate(node, 1860, 105)
    alert.refresh_from_db()
    assert alert.resolved and alert.resolved_at == at(1860)


def test_no_history_no_unusual_activity(unusual):
    node = watched_node()
    rollups(node, 1)  # too little history for a baseline
    baselines.compute(NOW)
    beat(node, NOW, api_calls=10**9)
    evaluate_alerts(NOW)
    evaluate_alerts(NOW + timedelta(hours=1))
    assert not Alert.objects.exists()


def test_a_drop_below_the_usual_fires_a_rule_looking_down(unusual):
    AlertRule.objects.filter(pk=unusual.pk).update(
        comparison="<=", threshold=-4, clear_threshold=-2, for_seconds=0
    )
    node = watched_node()
    rollups(node, 4, value=lambda week, i: 900.0 if i % 2 else 1100.0)  # 1000 +- 100
    baselines.compute(NOW)
    beat(node, NOW, api_calls=0)
    evaluate_alerts(NOW)
    (alert,) = Alert.objects.all()
    assert alert.fired_value == pytest.approx(-10.0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": "down"}, "metric"),
        ({"min_spread": 0}, "min_spread"),
        ({"min_spread": float("nan")}, "min_spread"),
        ({"kind": "magic"}, "kind"),
    ],
)
def test_a_bad_baseline_rule_names_its_field(fields, field):
    rule = {
        "metric": "api_calls",
        "comparison": ">=",
        "threshold": 4,
        "clear_threshold": 2,
        "kind": "baseline",
        "min_spread": 1,
        **fields,
    }
    assert set(rule_errors(**rule)) == {field}
