"""The clusters' models: both status tables (every declared move succeeds and is recorded,
every other is refused), the deadlines (per phase, the node's overall, the run's), the
derived legacy status, MAC and cluster-name rules."""

import itertools
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import (
    Cluster,
    ClusterNode,
    NodeReprovision,
    ReprovisionEvent,
    ReprovisionRun,
    legacy_status,
)
from portal.clusters.naming import normalise_mac
from portal.core import status as machine
from portal.core.status import TransitionNotAllowed
from tests.clusters.conftest import make_cluster

pytestmark = pytest.mark.django_db

NODE_ALLOWED = {(a, b) for a, targets in NodeReprovision.TRANSITIONS.items() for b in targets}
RUN_ALLOWED = {(a, b) for a, targets in ReprovisionRun.TRANSITIONS.items() for b in targets}


def run_row(status=R.REQUESTED, minutes=60):
    cluster = Cluster.objects.first() or make_cluster(count=1)
    now = timezone.now()
    return ReprovisionRun.objects.create(
        cluster=cluster,
        timeout_minutes=minutes,
        deadline=now + timedelta(minutes=minutes),
        status=status,
    )


def node_row(status=N.REQUESTED, run=None, minutes=45):
    run = run or run_row()
    now = timezone.now()
    return NodeReprovision.objects.create(
        run=run,
        cluster_node=ClusterNode.objects.first(),
        status=status,
        deadline_minutes=minutes,
        deadline=now + timedelta(minutes=minutes),
        secret="00" * 32,
    )


@pytest.mark.parametrize("model", [NodeReprovision, ReprovisionRun])
def test_the_tables_pass_the_checks(model):
    assert machine.check_machine(model) == []


@pytest.mark.parametrize(("source", "to"), sorted(NODE_ALLOWED))
def test_every_declared_node_move_succeeds_and_is_recorded(source, to):
    row = node_row(source)
    assert row.move(to, reason=f"to {to}")
    row.refresh_from_db()
    assert (row.status, row.reason) == (to, f"to {to}")
    event = ReprovisionEvent.objects.get(node_run=row)
    assert (event.run_id, event.from_status, event.status, event.reason) == (
        row.run_id,
        source,
        to,
        f"to {to}",
    )


@pytest.mark.parametrize(
    ("source", "to"),
    [(a, b) for a, b in itertools.product(list(N), list(N)) if (a, b) not in NODE_ALLOWED],
)
def test_every_other_node_move_is_refused(source, to):
    row = node_row(source)
    with pytest.raises(TransitionNotAllowed):
        row.move(to)
    row.refresh_from_db()
    assert row.status == source and not ReprovisionEvent.objects.exists()


@pytest.mark.parametrize(("source", "to"), sorted(RUN_ALLOWED))
def test_every_declared_run_move_succeeds_and_is_recorded(source, to):
    row = run_row(source)
    assert row.move(to, reason=f"to {to}")
    row.refresh_from_db()
    assert row.status == to
    assert (row.finished_at is None) == (to in (R.REQUESTED, R.RUNNING))
    event = ReprovisionEvent.objects.get(run=row)
    assert (event.node_run, event.from_status, event.status) == (None, source, to)


@pytest.mark.parametrize(
    ("source", "to"),
    [(a, b) for a, b in itertools.product(list(R), list(R)) if (a, b) not in RUN_ALLOWED],
)
def test_every_other_run_move_is_refused(source, to):
    row = run_row(source)
    with pytest.raises(TransitionNotAllowed):
        row.move(to)
    assert ReprovisionRun.objects.get(pk=row.pk).status == source


def test_each_phase_has_its_deadline_from_settings(settings):
    settings.CLUSTERS_PHASE_MINUTES = {**settings.CLUSTERS_PHASE_MINUTES, "installing": 7}
    row = node_row(N.REBOOTING)
    start = timezone.now()
    row.move(N.INSTALLING)
    assert start + timedelta(minutes=7) <= row.status_expires
    assert row.status_expires <= timezone.now() + timedelta(minutes=7)
    row.move(N.REGISTERED)
    row.move(N.READY)
    assert row.status_expires is None  # ready waits for the others (the run's deadline)


def test_the_nodes_overall_deadline_cuts_a_phase_short(settings):
    row = node_row(N.REBOOTING, minutes=45)
    NodeReprovision.objects.filter(pk=row.pk).update(deadline=timezone.now() + timedelta(minutes=3))
    row.refresh_from_db()
    row.move(N.INSTALLING)  # 40 minutes by default, but only 3 are left
    assert row.status_expires <= row.deadline


def test_the_sweep_times_a_node_out_naming_the_deadline_and_settles_the_run():
    row = node_row(N.INSTALLING)
    past = timezone.now() - timedelta(seconds=1)
    NodeReprovision.objects.filter(pk=row.pk).update(deadline=past, status_expires=past)
    machine.expire_statuses()
    row.refresh_from_db()
    assert row.status == N.TIMEOUT
    assert row.reason == "did not register within the node's deadline of 45 minutes (in installing)"
    run = ReprovisionRun.objects.get(pk=row.run_id)
    assert run.status == R.TIMEOUT and "did not register" in run.reason


def test_a_phase_timeout_says_which_phase():
    row = node_row(N.JOINING)
    NodeReprovision.objects.filter(pk=row.pk).update(
        status_expires=timezone.now() - timedelta(seconds=1)
    )
    machine.expire_statuses()
    row.refresh_from_db()
    assert (row.status, row.reason) == (N.TIMEOUT, "timed out after 20 minutes in joining")


def test_the_runs_deadline_times_out_the_run_and_its_moving_nodes_not_the_ready_ones():
    run = run_row(R.RUNNING, minutes=60)
    cluster = run.cluster
    from tests.clusters.conftest import make_node

    other = make_node(cluster, "pve-2", 2)
    waiting = node_row(N.INSTALLING, run=run)
    ready = NodeReprovision.objects.create(
        run=run,
        cluster_node=other,
        status=N.READY,
        deadline_minutes=45,
        deadline=timezone.now() + timedelta(minutes=45),
        secret="00" * 32,
    )
    ReprovisionRun.objects.filter(pk=run.pk).update(
        status_expires=timezone.now() - timedelta(seconds=1)
    )
    machine.expire_statuses()
    run.refresh_from_db()
    assert (run.status, run.reason) == (R.TIMEOUT, "the run's deadline of 60 minutes passed")
    assert run.finished_at is not None
    waiting.refresh_from_db()
    assert waiting.status == N.TIMEOUT
    assert waiting.reason == "the run's deadline passed (in installing)"
    ready.refresh_from_db()
    assert ready.status == N.READY


@pytest.mark.parametrize(
    ("status", "legacy"),
    [
        (N.REQUESTED, "in_progress"),
        (N.REBOOTING, "in_progress"),
        (N.INSTALLING, "in_progress"),
        (N.REGISTERED, "in_progress"),
        (N.READY, "completed"),
        (N.JOINING, "completed"),
        (N.CLUSTERED, "clustered"),
        (N.TIMEOUT, "timeout"),
        (N.ERROR, "error"),
        (N.CANCELED, "error"),
    ],
)
def test_the_legacy_status_is_derived(status, legacy):
    assert legacy_status(status) == legacy


@pytest.mark.parametrize(
    "given",
    [
        "52:54:00:AB:cd:EF",
        "52-54-00-ab-cd-ef",
        "5254.00ab.cdef",
        "525400ABCDEF",
        " 52:54:00:ab:cd:ef ",
    ],
)
def test_macs_are_normalised(given):
    assert normalise_mac(given) == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize(
    "bad", ["", "52:54:00:ab:cd", "52:54:00:ab:cd:eg", "52:54-00:ab:cd:ef", None, 7, "x" * 99]
)
def test_bad_macs_are_refused(bad):
    with pytest.raises(ValueError):
        normalise_mac(bad)


def test_a_mac_is_stored_normalised_and_unique():
    cluster = make_cluster(count=1)
    node = cluster.nodes.get()
    node.mac = "52-54-00-AA-BB-CC"
    node.save()
    assert ClusterNode.objects.get(pk=node.pk).mac == "52:54:00:aa:bb:cc"
    from tests.clusters.conftest import make_node

    twin = make_node(cluster, "pve-twin", 9)
    twin.mac = "52:54:00:aa:bb:cc"
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()


@pytest.mark.parametrize("name", ["a" * 16, "-pve", "pve_1", "pve.1", "", "pvé"])
def test_cluster_names_follow_proxmoxs_rule(name):
    with pytest.raises(ValidationError) as refused:
        Cluster(name=name).full_clean()
    assert "name" in refused.value.message_dict


def test_a_good_cluster_name():
    Cluster(name="Pve-Lab-01").full_clean()
