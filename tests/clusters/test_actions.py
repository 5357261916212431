"""The orchestration, with jobs asserted, never run: reimage → registered → readiness job →
ready → (all ready) cluster_form.yml with its variables → clustered; not ready is checked
again (bounded); a node that never registers times out and the run with it, no join; a
join's structured error; reprovisioning a member (delnode first); power failures."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from portal.clusters import actions
from portal.clusters.actions import power
from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import ClusterNode, ReprovisionRun
from portal.clusters.power import PowerError
from portal.core import status as machine
from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.clusters.conftest import make_cluster, node_runs, report, start
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db
FULL_PATH = [N.REQUESTED, N.REBOOTING, N.INSTALLING, N.REGISTERED, N.READY, N.JOINING]


def register(node_run, link0=None):
    """The node fetches its script and registers (the legacy call: no signing needed here)."""
    mac = node_run.cluster_node.mac
    actions.issue_script(mac, "http://portal.test")
    n = node_run.cluster_node.node.name.rsplit("-", 1)[1]
    data = {
        "mac": mac,
        "hostname": node_run.cluster_node.node.name,
        "ip": f"10.9.0.{n}",
        "link0": link0 or f"10.10.0.{n}",
        "status": "post-install-complete",
    }
    actions.legacy_register(data, by=None)
    node_run.refresh_from_db()
    return node_run


def ready(node_run, is_ready=True, reason="ready"):
    job = node_run.current_job
    report(
        job,
        "cluster_ready",
        {node_run.cluster_node.node.name: {"ready": is_ready, "reason": reason}},
    )
    jobs.finalize(job)
    node_run.refresh_from_db()
    return job


def formed(run, states):
    run.refresh_from_db()
    job = run.form_job
    report(job, "proxmox_cluster", states)
    jobs.finalize(job)
    run.refresh_from_db()
    return job


def member(state="joined"):
    return {"state": state, "error": None}


def test_all_nodes_reprovisioned_registered_ready_then_one_formation_job(broker):
    cluster = make_cluster(count=3)
    cluster.init_node = cluster.nodes.get(node__name="pve-2")
    cluster.save()
    run = start(cluster, user=AdminFactory(username="ops"))
    rows = node_runs(run)
    for name in ("pve-1", "pve-2", "pve-3"):
        register(rows[name])
        job = rows[name].current_job
        assert (job.playbook, job.action) == ("cluster_node_ready.yml", "clusters.node_ready")
        assert [n.name for n in job.nodes.all()] == [name]
    ready(rows["pve-1"])
    ready(rows["pve-2"])
    run.refresh_from_db()
    assert run.form_job is None  # pve-3 not ready yet
    ready(rows["pve-3"])
    run.refresh_from_db()
    job = run.form_job
    assert (job.playbook, job.action, job.target) == ("cluster_form.yml", "clusters.form", run)
    assert sorted(n.name for n in job.nodes.all()) == ["pve-1", "pve-2", "pve-3"]
    assert job.extra_vars == {
        "proxmox_cluster_name": "pve",
        "proxmox_cluster_init_node": "pve-2",
        "proxmox_cluster_link0": {
            "pve-1": "10.10.0.1",
            "pve-2": "10.10.0.2",
            "pve-3": "10.10.0.3",
        },
        "proxmox_cluster_remove": [],
        "proxmox_cluster_quorum_timeout": 120,
        "proxmox_cluster_join_timeout": 300,
    }
    assert job.requested_by.username == "ops"
    assert {nr.status for nr in node_runs(run).values()} == {N.JOINING}
    formed(run, {"pve-1": member(), "pve-2": member("created"), "pve-3": member()})
    assert run.status == R.CLUSTERED and run.finished_at is not None
    for node_run in node_runs(run).values():
        assert node_run.status == N.CLUSTERED
        assert list(node_run.history.values_list("status", flat=True)) == [*FULL_PATH, N.CLUSTERED]
    assert set(ClusterNode.objects.values_list("is_member", flat=True)) == {True}
    assert Job.objects.filter(action="clusters.form").count() == 1


def test_not_ready_is_checked_again_later_then_times_out_at_the_bound(broker, settings):
    settings.CLUSTERS_READY_MAX_CHECKS = 3
    run = start(make_cluster(count=1))
    node_run = register(node_runs(run)["pve-1"])
    first = ready(node_run, is_ready=False, reason="pve-cluster inactive")
    again = node_run.current_job
    assert again != first and again.playbook == "cluster_node_ready.yml"
    delay = (again.not_before - timezone.now()).total_seconds()
    assert 25 < delay <= 30
    assert node_run.status == N.REGISTERED and node_run.ready_checks == 2
    assert "pve-cluster inactive" in node_run.reason and "checking again in 30 s" in node_run.reason
    ready(node_run, is_ready=False, reason="pve-cluster inactive")
    ready(node_run, is_ready=False, reason="pve-cluster inactive")
    assert node_run.status == N.TIMEOUT
    assert node_run.reason == "not ready after 3 check(s): pve-cluster inactive"
    run.refresh_from_db()
    assert run.status == R.TIMEOUT and not Job.objects.filter(action="clusters.form").exists()


def test_a_readiness_job_that_reported_nothing_is_checked_again(broker):
    run = start(make_cluster(count=1))
    node_run = register(node_runs(run)["pve-1"])
    job = node_run.current_job
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, reason="host unreachable")
    job.refresh_from_db()
    jobs.finalize(job)
    node_run.refresh_from_db()
    assert node_run.status == N.REGISTERED and node_run.current_job != job
    assert "readiness not reported: host unreachable" in node_run.reason


def test_a_node_that_never_registers_times_out_and_the_others_are_not_joined(broker):
    run = start(make_cluster(count=3))
    rows = node_runs(run)
    for name in ("pve-1", "pve-2"):
        ready(register(rows[name]))
    silent = rows["pve-3"]
    past = timezone.now() - timedelta(seconds=1)
    type(silent).objects.filter(pk=silent.pk).update(deadline=past, status_expires=past)
    machine.expire_statuses()
    silent.refresh_from_db()
    assert silent.status == N.TIMEOUT
    assert (
        silent.reason == "did not register within the node's deadline of 45 minutes (in rebooting)"
    )
    run.refresh_from_db()
    assert run.status == R.TIMEOUT
    assert "pve-3: timeout" in run.reason and "not joined: pve-1, pve-2" in run.reason
    assert not Job.objects.filter(action="clusters.form").exists()
    assert {rows[n].status for n in ("pve-1", "pve-2")} == {N.READY}
    assert not ClusterNode.objects.filter(is_member=True).exists()


def test_a_join_error_is_recorded_with_its_code_and_the_run_ends_error(broker):
    run = start(make_cluster(count=2))
    for node_run in node_runs(run).values():
        ready(register(node_run))
    error = {"code": "address_in_use", "message": "10.10.0.2 is used by pve-9"}
    formed(run, {"pve-1": member("created"), "pve-2": {"state": "error", "error": error}})
    rows = node_runs(run)
    assert rows["pve-1"].status == N.CLUSTERED
    assert (rows["pve-2"].status, rows["pve-2"].error_code) == (N.ERROR, "address_in_use")
    assert rows["pve-2"].reason == "address_in_use: 10.10.0.2 is used by pve-9"
    assert run.status == R.ERROR and "address_in_use" in run.reason


def test_a_formation_job_that_reported_nothing_fails_its_nodes_with_the_jobs_reason(broker):
    run = start(make_cluster(count=1))
    ready(register(node_runs(run)["pve-1"]))
    run.refresh_from_db()
    job = run.form_job
    Job.objects.filter(pk=job.pk).update(status=JobStatus.TIMEOUT, reason="ran past 900 s")
    job.refresh_from_db()
    jobs.finalize(job)
    node_run = node_runs(run)["pve-1"]
    assert node_run.status == N.ERROR
    assert node_run.reason == "cluster_form.yml did not report: ran past 900 s"


def test_reprovisioning_a_member_removes_it_first_and_keeps_the_init_node(broker):
    cluster = make_cluster(count=3)
    run = start(cluster)
    for node_run in node_runs(run).values():
        ready(register(node_run))
    formed(run, {f"pve-{n}": member() for n in (1, 2, 3)})
    cluster.init_node = cluster.nodes.get(node__name="pve-1")
    cluster.save()
    again = start(cluster, nodes=[cluster.nodes.get(node__name="pve-1")])
    node_run = node_runs(again)["pve-1"]
    assert node_run.was_member
    assert not ClusterNode.objects.get(pk=node_run.cluster_node_id).is_member
    ready(register(node_run, link0="10.10.0.11"))
    again.refresh_from_db()
    variables = again.form_job.extra_vars
    assert variables["proxmox_cluster_remove"] == ["pve-1"]
    assert variables["proxmox_cluster_init_node"] == "pve-2"  # a member that stays
    assert variables["proxmox_cluster_link0"]["pve-1"] == "10.10.0.11"
    assert sorted(n.name for n in again.form_job.nodes.all()) == ["pve-1", "pve-2", "pve-3"]
    formed(again, {"pve-1": member(), "pve-2": member("member"), "pve-3": member("member")})
    assert again.status == R.CLUSTERED


def test_a_power_failure_is_the_nodes_error_and_ends_the_run(broker):
    run = start(make_cluster(count=1), reimage=False)
    node_run = node_runs(run)["pve-1"]
    with mock.patch("portal.clusters.actions.power.get_driver") as get:
        get.return_value.reimage.side_effect = PowerError("pve-1: BMC 10.8.0.1 timed out")
        power.do_reimage(node_run.pk)
    node_run.refresh_from_db()
    assert node_run.status == N.ERROR
    assert node_run.reason == "reimage (test-host) failed: pve-1: BMC 10.8.0.1 timed out"
    run.refresh_from_db()
    assert run.status == R.ERROR


def test_the_driver_gets_the_nodes_bmc_and_network_boot_failures_do_not_block(broker):
    run = start(make_cluster(count=1), reimage=False)
    node_run = node_runs(run)["pve-1"]
    with mock.patch("portal.clusters.actions.power.get_driver") as get:
        power.do_reimage(node_run.pk)
        target = get.return_value.reimage.call_args.args[0]
        assert (target.node, target.mac, target.address, target.username, target.password) == (
            "pve-1",
            node_run.cluster_node.mac,
            "10.8.0.1",
            "admin",
            "bmc-secret-pw",
        )
        register(node_run)
        get.return_value.disable_network_boot.side_effect = PowerError("BMC busy")
        power.do_disable_network_boot(node_run.pk)
    node_run.refresh_from_db()
    assert node_run.status == N.REGISTERED
    assert node_run.reason == "could not switch network boot off (test-host): BMC busy"


def test_cancel_during_the_join_cancels_the_formation_job(broker):
    run = start(make_cluster(count=1))
    ready(register(node_runs(run)["pve-1"]))
    run.refresh_from_db()
    actions.cancel_run(run, by=AdminFactory())
    run.refresh_from_db()
    assert run.status == R.CANCELED
    assert run.form_job.status == JobStatus.CANCELED
    assert node_runs(run)["pve-1"].status == N.CANCELED


def test_a_retried_node_goes_round_again_and_the_run_can_still_cluster(broker):
    run = start(make_cluster(count=2))
    rows = node_runs(run)
    ready(register(rows["pve-1"]))
    rows["pve-2"].move(N.ERROR, [N.REBOOTING], reason="installer crashed")
    actions.settle_run(run.pk)
    run.refresh_from_db()
    assert run.status == R.ERROR
    with mock.patch("portal.clusters.actions.power.get_driver"):
        actions.retry_node(rows["pve-2"])
        power.do_reimage(rows["pve-2"].pk)
    run.refresh_from_db()
    assert run.status == R.RUNNING
    ready(register(rows["pve-2"]))
    formed(run, {"pve-1": member("created"), "pve-2": member()})
    assert run.status == R.CLUSTERED
    assert ReprovisionRun.objects.get(pk=run.pk).events.filter(status=R.RUNNING).count() == 2
