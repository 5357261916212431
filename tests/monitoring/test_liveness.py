"""The liveness evaluator: late and down at their due times, guarded against competitors."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from portal.monitoring import actions
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness
from tests.factories import NodeFactory


def _row(status, late_in=None, due_in=None, now=None):
    now = now or timezone.now()
    return NodeLiveness.objects.create(
        node=NodeFactory(),
        status=status,
        late_at=now + timedelta(seconds=late_in) if late_in is not None else None,
        next_due_at=now + timedelta(seconds=due_in) if due_in is not None else None,
    )


@pytest.mark.django_db
def test_nodes_move_at_their_due_times_and_not_before():
    now = timezone.now()
    on_time = _row(Liveness.UP, late_in=5, due_in=50, now=now)
    late = _row(Liveness.UP, late_in=-1, due_in=50, now=now)
    down_from_up = _row(Liveness.UP, late_in=-60, due_in=-1, now=now)
    down_from_late = _row(Liveness.LATE, late_in=-60, due_in=0, now=now)
    installed_silent = _row(Liveness.UNKNOWN, due_in=-1, now=now)
    never_due = _row(Liveness.UNKNOWN, now=now)
    already_down = _row(Liveness.DOWN, now=now)
    moved = actions.evaluate_liveness(now)
    assert sorted(moved["down"]) == sorted(
        [down_from_up.pk, down_from_late.pk, installed_silent.pk]
    )
    assert moved["late"] == [late.pk]
    status = dict(NodeLiveness.objects.values_list("pk", "status"))
    assert status[on_time.pk] == Liveness.UP
    assert status[late.pk] == Liveness.LATE
    assert status[down_from_up.pk] == status[down_from_late.pk] == Liveness.DOWN
    assert status[installed_silent.pk] == Liveness.DOWN
    assert status[never_due.pk] == Liveness.UNKNOWN
    assert status[already_down.pk] == Liveness.DOWN
    down = NodeLiveness.objects.get(pk=down_from_up.pk)
    assert down.next_due_at is None and down.status_changed_at == now
    assert actions.evaluate_liveness(now) == {"down": [], "late": []}


@pytest.mark.django_db
def test_a_late_node_goes_down_at_its_due_time():
    now = timezone.now()
    row = _row(Liveness.UP, late_in=1, due_in=3, now=now)
    assert actions.evaluate_liveness(now + timedelta(seconds=1))["late"] == [row.pk]
    assert actions.evaluate_liveness(now + timedelta(seconds=2.9))["down"] == []
    assert actions.evaluate_liveness(now + timedelta(seconds=3))["down"] == [row.pk]


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row locks under concurrency: PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_two_competing_evaluators_never_both_move_a_node():
    now = timezone.now()
    rows = [_row(Liveness.UP, late_in=-10, due_in=-1, now=now) for _ in range(200)]
    start = threading.Barrier(2)
    results, errors = [], []

    def evaluator():
        try:
            start.wait()
            for _ in range(5):
                results.append(actions.evaluate_liveness(now))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    moved = [node for result in results for node in result["down"]]
    assert sorted(moved) == sorted(row.pk for row in rows)  # each exactly once
    assert not any(result["late"] for result in results)
    assert set(NodeLiveness.objects.values_list("status", flat=True)) == {Liveness.DOWN}


@pytest.mark.django_db
def test_the_due_index_is_partial():
    from portal.monitoring.models import NodeLiveness as model

    names = {index.name: index for index in model._meta.indexes}
    assert names["liveness_due_idx"].condition is not None
    assert names["liveness_late_idx"].condition is not None
    assert connection.vendor in ("sqlite", "postgresql")


@pytest.mark.django_db
def test_the_beat_task_calls_the_evaluator():
    from portal.monitoring.tasks import evaluate_liveness

    row = _row(Liveness.UP, late_in=-10, due_in=-1)
    evaluate_liveness()
    assert NodeLiveness.objects.get(pk=row.pk).status == Liveness.DOWN


@pytest.mark.django_db
def test_metrics_count_enabled_nodes_by_liveness(client, settings):
    settings.METRICS_OPEN = True
    _row(Liveness.UP)
    _row(Liveness.UP)
    _row(Liveness.DOWN)
    NodeFactory()  # no agent: unknown
    NodeFactory(enabled=False)  # not counted
    text = client.get("/metrics").content.decode()
    assert 'portal_nodes_liveness{status="up"} 2.0' in text
    assert 'portal_nodes_liveness{status="down"} 1.0' in text
    assert 'portal_nodes_liveness{status="unknown"} 1.0' in text
    assert 'portal_nodes_liveness{status="late"} 0.0' in text


@pytest.mark.django_db
def test_deleting_a_node_leaves_its_history_to_age_out():
    from portal.monitoring.models import Sample
    from portal.nodes.actions import do_delete_node

    row = _row(Liveness.UP)
    node, node_id = row.node, row.node_id
    Sample.objects.create(
        node=node,
        at=timezone.now(),
        cpu_percent=1,
        memory_percent=1,
        disk_percent=1,
        disk_used_gb=1,
    )
    do_delete_node(node)
    assert not NodeLiveness.objects.filter(pk=node_id).exists()
    assert Sample.objects.filter(node_id=node_id).count() == 1  # pruned with its age


def test_liveness_declares_its_moves_on_the_status_base():
    from portal.core.status import StatusModel, check_machine

    assert issubclass(NodeLiveness, StatusModel)
    assert check_machine(NodeLiveness) == []
    # A heartbeat moves any status to up; the evaluator's moves are declared.
    assert actions.sources(Liveness.UP) == set(Liveness.values)
    assert actions.sources(Liveness.DOWN) == {Liveness.UNKNOWN, Liveness.UP, Liveness.LATE}
    assert actions.sources(Liveness.LATE) == {Liveness.UP}


@pytest.mark.django_db
def test_an_undeclared_move_is_refused():
    with pytest.raises(ValueError, match="declares no move"):
        actions._move(Liveness.LATE, {Liveness.DOWN}, "late_at", timezone.now(), False)
