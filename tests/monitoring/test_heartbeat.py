"""PUT /api/nodes/{id}/heartbeat: validation, sequence numbers, token scoping, cost."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Sample
from tests.monitoring.conftest import GOOD

pytestmark = pytest.mark.django_db


def test_a_heartbeat_stores_a_sample_and_marks_the_node_up(agent, beat):
    node, token = agent()
    answer = beat(
        node.pk,
        token,
        seq=7,
        load=[0.5, 0.4, 0.3],
        uptime_seconds=1234,
        agent_version="1.0.0",
        gauges={"api_calls": 12, "api_quota": 1000},
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["seq"] == 7
    row = NodeLiveness.objects.get(node=node)
    assert (row.status, row.last_seq, row.agent_version, row.uptime_seconds) == (
        Liveness.UP,
        7,
        "1.0.0",
        1234,
    )
    assert row.cpu_percent == 25.5 and row.load1 == 0.5
    assert row.next_due_at > row.late_at > row.last_seen_at
    sample = Sample.objects.get(node=node)
    assert (
        sample.cpu_percent,
        sample.memory_percent,
        sample.disk_percent,
        sample.disk_used_gb,
        sample.load1,
    ) == (25.5, 45.2, 65.0, 32.5, 0.5)
    assert sample.gauges == {"api_calls": 12, "api_quota": 1000}


def test_the_source_apis_body_with_a_seq_is_enough(agent, beat):
    node, token = agent()
    assert beat(node.pk, token, seq=1).status_code == 200


def test_due_times_follow_the_interval_and_settings(agent, beat, settings):
    settings.MONITORING_LATE_SECONDS = 5
    settings.MONITORING_GRACE_SECONDS = 20
    node, token = agent()
    beat(node.pk, token, seq=1, interval_seconds=10)
    row = NodeLiveness.objects.get(node=node)
    assert (row.late_at - row.last_seen_at).total_seconds() == 15
    assert (row.next_due_at - row.last_seen_at).total_seconds() == 30
    assert row.interval_seconds == 10


BAD = [
    ({"cpu_percent": -1}, "cpu_percent"),
    ({"cpu_percent": 100.01}, "cpu_percent"),
    ({"memory_percent": 101}, "memory_percent"),
    ({"disk_percent": "50"}, "disk_percent"),
    ({"disk_percent": True}, "disk_percent"),
    ({"disk_percent": None}, "disk_percent"),
    ({"disk_used_gb": -0.5}, "disk_used_gb"),
    ({"seq": 0}, "seq"),
    ({"seq": 1.5}, "seq"),
    ({"seq": True}, "seq"),
    ({"seq": 2**63}, "seq"),
    ({"load": [1, 2]}, "load"),
    ({"load": [1, -2, 3]}, "load"),
    ({"load": "1 2 3"}, "load"),
    ({"uptime_seconds": -1}, "uptime_seconds"),
    ({"uptime_seconds": 1.5}, "uptime_seconds"),
    ({"interval_seconds": 0}, "interval_seconds"),
    ({"agent_version": "1.0; rm -rf /"}, "agent_version"),
    ({"agent_version": 1}, "agent_version"),
    ({"gauges": []}, "gauges"),
    ({"gauges": {"Bad-Name": 1}}, "gauges.Bad-Name"),
    ({"gauges": {"api_calls": "12"}}, "gauges.api_calls"),
    ({"gauges": {"api_calls": False}}, "gauges.api_calls"),
    ({"gauges": {f"g{i}": i for i in range(33)}}, "gauges"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
def test_a_bad_value_is_a_400_naming_the_field_and_changes_nothing(agent, beat, change, field):
    node, token = agent()
    answer = beat(node.pk, token, raw={**GOOD, "seq": 5, **change})
    assert answer.status_code == 400, answer.content
    assert field in [error["field"] for error in answer.json()["errors"]]
    assert not Sample.objects.exists()
    assert NodeLiveness.objects.get(node=node).last_seq == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused_by_name(agent, api, literal):
    node, token = agent()
    body = json.dumps({**GOOD, "seq": 1}).replace("25.5", literal)
    answer = api.generic(
        "PUT",
        f"/api/nodes/{node.pk}/heartbeat",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "cpu_percent"


@pytest.mark.parametrize("body", ["{", "[]", "12", '"x"', "[" * 100000])
def test_a_body_that_is_not_an_object_is_a_400(agent, api, body):
    node, token = agent()
    answer = api.generic(
        "PUT",
        f"/api/nodes/{node.pk}/heartbeat",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code in (400, 413)


def test_a_body_over_16_kb_is_a_413(agent, beat):
    node, token = agent()
    answer = beat(node.pk, token, raw={**GOOD, "seq": 1, "agent_version": "x" * 17000})
    assert answer.status_code == 413
    assert not Sample.objects.exists()


def test_a_missing_required_field_is_named(agent, beat):
    node, token = agent()
    answer = beat(node.pk, token, raw={"cpu_percent": 1, "seq": 1})
    fields = {error["field"] for error in answer.json()["errors"]}
    assert answer.status_code == 400
    assert fields == {"memory_percent", "disk_percent", "disk_used_gb"}


def test_a_replayed_or_older_seq_changes_nothing(agent, beat):
    node, token = agent()
    assert beat(node.pk, token, seq=10).status_code == 200
    before = NodeLiveness.objects.get(node=node)
    for seq in (10, 9, 1):
        answer = beat(node.pk, token, seq=seq, cpu_percent=99.0)
        assert answer.status_code == 409
        assert answer.json()["code"] == "stale_seq"
        assert answer.json()["last_seq"] == 10
    after = NodeLiveness.objects.get(node=node)
    assert (after.last_seq, after.cpu_percent, after.last_seen_at) == (
        10,
        before.cpu_percent,
        before.last_seen_at,
    )
    assert Sample.objects.count() == 1
    assert beat(node.pk, token, seq=11).status_code == 200


def test_a_token_works_for_its_own_node_only_and_says_nothing_of_others(agent, beat):
    node, token = agent()
    other, other_token = agent()
    wrong = beat(other.pk, token)
    unknown = beat(999999, token)
    garbage = beat(node.pk, "not-the-token")
    assert wrong.status_code == unknown.status_code == garbage.status_code == 404
    assert wrong.json()["code"] == unknown.json()["code"] == "not_found"
    assert wrong.json()["message"].replace(str(other.pk), "N") == unknown.json()["message"].replace(
        "999999", "N"
    )
    assert not Sample.objects.exists()
    assert beat(other.pk, other_token).status_code == 200


def test_a_node_without_an_agent_token_refuses_every_token(beat, agent):
    from tests.factories import NodeFactory

    bare = NodeFactory()
    _node, token = agent()
    assert beat(bare.pk, token).status_code == 404
    assert beat(bare.pk, "").status_code == 401


@pytest.mark.parametrize("header", ["", "Token abc", "Bearer", "Bearer " + "x" * 300])
def test_without_a_bearer_token_the_answer_is_401(agent, api, header):
    node, _ = agent()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    answer = api.put(f"/api/nodes/{node.pk}/heartbeat", {**GOOD, "seq": 1}, format="json", **extra)
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_only_put(agent, api):
    node, token = agent()
    answer = api.post(
        f"/api/nodes/{node.pk}/heartbeat",
        {**GOOD, "seq": 1},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 405


def test_a_rotated_token_works_and_its_first_beat_retires_the_old_one(agent, beat):
    from portal.accounts.actions import hash_token

    node, old = agent()
    NodeLiveness.objects.filter(node=node).update(next_token_hash=hash_token("n" * 43))
    assert beat(node.pk, old, seq=1).status_code == 200  # the old one still works
    assert beat(node.pk, "n" * 43, seq=2).status_code == 200
    row = NodeLiveness.objects.get(node=node)
    assert (row.token_hash, row.next_token_hash) == (hash_token("n" * 43), "")
    assert beat(node.pk, old, seq=3).status_code == 404


def test_a_heartbeat_is_one_update_and_one_insert(agent, beat):
    node, token = agent()
    beat(node.pk, token, seq=1)  # warm up (content types, etc.)
    with CaptureQueriesContext(connection) as queries:
        answer = beat(node.pk, token, seq=2, gauges={"api_calls": 3})
    assert answer.status_code == 200
    sql = [
        q["sql"].upper()
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN"))
    ]
    joined = " ".join(sql)
    assert joined.count("UPDATE ") == 1 and joined.count("INSERT INTO ") == 1, sql
    # No read: the INSERT takes the UPDATE's row, and set_config only sets the commit mode.
    assert "SELECT" not in joined.replace("SELECT NODE_ID", "").replace("SELECT SET_CONFIG", "")
    # PostgreSQL: one statement (one round trip); elsewhere two in one transaction.
    assert len(sql) == (1 if connection.vendor == "postgresql" else 2), sql


def test_a_refused_heartbeat_on_a_stale_seq_stores_no_sample(agent, beat):
    node, token = agent()
    assert beat(node.pk, token, seq=5).status_code == 200
    assert beat(node.pk, token, seq=5).status_code == 409
    assert beat(node.pk, "wrong", seq=6).status_code == 404
    assert Sample.objects.filter(node=node).count() == 1


def test_a_down_node_that_beats_is_up_again(agent, beat):
    node, token = agent(status=Liveness.DOWN)
    beat(node.pk, token, seq=1)
    row = NodeLiveness.objects.get(node=node)
    assert row.status == Liveness.UP and row.status_changed_at == row.last_seen_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sync_commit", [False, True])
def test_an_asynchronous_heartbeat_commit_is_the_heartbeats_own(agent, beat, settings, sync_commit):
    """MONITORING_HEARTBEAT_SYNC_COMMIT off: the heartbeat's transaction alone skips the
    WAL flush wait; the connection's other transactions (any other write) still wait."""
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    settings.MONITORING_HEARTBEAT_SYNC_COMMIT = sync_commit
    node, token = agent()
    assert beat(node.pk, token, seq=1).status_code == 200
    assert Sample.objects.filter(node=node).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_the_heartbeats_statement_is_prepared_once_per_connection(agent, beat):
    """PostgreSQL parses and plans it once per connection, not once per beat."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements: the PostgreSQL path")
    node, token = agent()
    for seq in (1, 2, 3):
        assert beat(node.pk, token, seq=seq).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert len([sql for sql in prepared if "monitoring_sample" in sql]) == 1, prepared
