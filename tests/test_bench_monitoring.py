"""The monitoring group of `make bench` (#14): what it selects, what it sends, what it
counts, its bench-only floor view and its bulk rows. No timed assertion: the figures
themselves are the bench's."""

import json

import pytest
from django.db import connection
from django.urls import NoReverseMatch, reverse

from bench.__main__ import judge, select
from bench.monitoring import bulk_nodes, heartbeat_body, lags_ms, slices
from bench.suite import MONITORING, ORDER
from portal.monitoring.heartbeat import validate
from portal.monitoring.models import NodeLiveness, Sample
from tests.factories import NodeFactory


def test_the_default_run_leaves_the_monitoring_group_out():
    default = select("")
    assert default and not set(default) & set(MONITORING)
    assert select("launch_rate") == ["launch_rate"]


def test_the_monitoring_group_and_a_figure_another_entry_gives_select_their_entries():
    assert select("monitoring") == list(MONITORING)
    assert select("heartbeat_ratio") == ["heartbeat_ingest_rate"]
    assert select("alert_eval_100k,launch_rate") == ["launch_rate", "alert_eval_100k"]
    assert set(MONITORING) <= set(ORDER)


def test_the_monitoring_figures_are_judged_against_the_issues_targets():
    assert judge("heartbeat_ingest_rate", (1999.0, "/s"))["met"] is False
    assert judge("heartbeat_ratio", (0.8, "x"))["met"] is True
    assert judge("alert_eval_100k", (1001.0, "ms"))["target"] == "<= 1000"
    assert judge("down_detection_lag_p95", (1500.0, "ms"))["met"] is True


def test_the_bench_sends_heartbeats_the_portal_accepts():
    values = validate(json.loads(heartbeat_body(7, 123)))
    assert values["seq"] == 7 and values["interval_seconds"] == 60


def test_each_node_belongs_to_one_agent():
    parts = slices(list(range(10)), 3)
    assert sorted(n for part in parts for n in part) == list(range(10))
    assert len(parts) == 3 and all(parts)


def test_the_lag_is_from_the_due_time_and_only_of_nodes_seen():
    assert lags_ms({1: 10.0, 2: 11.0, 3: 12.0}, {1: 10.5, 2: 13.0}) == [500.0, 2000.0]


def test_the_floor_view_is_a_bench_url_only(client, db, settings):
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor", kwargs={"node_id": 1})
    settings.ROOT_URLCONF = "bench.urls"
    node = NodeFactory()
    NodeLiveness.objects.create(node=node)
    body = json.loads(heartbeat_body(3, node.pk))
    url = reverse("bench-floor", kwargs={"node_id": node.pk})
    response = client.put(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert NodeLiveness.objects.get(node=node).last_seq == 3
    assert Sample.objects.filter(node_id=node.pk, disk_percent=50.0).count() == 1
    missing = client.put(
        reverse("bench-floor", kwargs={"node_id": node.pk + 1000}),
        json.dumps(body),
        content_type="application/json",
    )
    assert missing.status_code == 404
    # the product's URLs are all there too
    assert reverse("api:node-heartbeat", kwargs={"node_id": node.pk})


@pytest.mark.django_db
def test_bulk_nodes_makes_nodes_with_liveness_rows_the_heartbeat_accepts():
    if connection.vendor != "postgresql":
        pytest.skip("bulk rows use PostgreSQL's generate_series (the bench's database)")
    from portal.monitoring.heartbeat import store

    first, last = bulk_nodes(
        "bulk-",
        5,
        {
            "token_hash": "encode(sha256(convert_to('s3cret' || n, 'UTF8')), 'hex')",
            "status": "'up'",
            "last_seq": "1",
        },
    )
    assert last - first == 4
    rows = NodeLiveness.objects.filter(node_id__gte=first, node_id__lte=last)
    assert rows.count() == 5 and set(rows.values_list("status", flat=True)) == {"up"}
    stored, _ = store(first, f"s3cret{first}", validate(json.loads(heartbeat_body(2, 0))))
    assert stored


def test_the_cpu_split_shows_what_each_part_used_and_the_rest():
    from bench.monitoring import cpu_seconds, cpu_split
    from bench.procs import machine_busy

    before = {"web": 1.0, "clients": 2.0, "postgres": 3.0, "machine": 10.0}
    after = {"web": 3.0, "clients": 3.0, "postgres": 4.0, "machine": 16.0}
    assert cpu_split(before, after, 2.0) == {
        "web": 1.0,
        "clients": 0.5,
        "postgres": 0.5,
        "machine": 3.0,
        "other": 1.0,
    }
    import os

    assert cpu_seconds([os.getpid()]) > 0 and machine_busy() > 0
    assert cpu_seconds([2**22 + 12345]) == 0  # a process that is gone counts nothing


def test_the_floor_is_served_by_the_heartbeats_fast_path(db):
    from bench import wsgi
    from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath
    from tests.monitoring.test_heartbeat_wsgi import call, environ

    assert isinstance(wsgi.application, HeartbeatFastPath)
    node = NodeFactory()
    NodeLiveness.objects.create(node=node)
    answer = call(wsgi.application, environ("PUT", f"/bench/floor/heartbeat/{node.pk}",
                                            heartbeat_body(4, node.pk)))  # fmt: skip
    assert answer.status_code == 200 and answer.json() == {"seq": 4}
    assert answer.headers["X-Frame-Options"] == "DENY"  # the fast path's headers
    assert NodeLiveness.objects.get(node=node).last_seq == 4
    assert Sample.objects.filter(node_id=node.pk, cpu_percent=float(node.pk % 100)).count() == 1
