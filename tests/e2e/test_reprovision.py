"""Reprovision on three real hosts, end to end through the portal (issue #16).

Each host is a freshly installed Proxmox node of the test fixture (tests/e2e/clusters: the
stand-in pvecm on real corosync, baked into the host before its first boot, so a re-image
brings it back). The portal is a live server on the hosts' bridge. `start_run` is what the
API, the admin and `manage.py reprovision` call; then everything is the product's own path:

    the power driver `test-host` re-images each host (the harness: disk back to its install,
    new SSH host keys, a first-boot unit) -> the host fetches its post-install script from
    /api/clusters/post-install?mac=... -> the script registers with its one-time token and
    HMAC (and its new host keys, which the portal pins) -> readiness job (SSH within 10 s,
    pvecm, services) -> when every node is ready, one cluster_form.yml job -> clustered.

The test acts as the worker and beat: an inline thread runs due jobs, the clusters' Celery
tasks as they are published, and the deadline sweep. Checked on the machines: `pvecm
status` quorate with 3 members on every host; reprovisioning one member of the formed
cluster removes it first and it re-joins; a host that never registers ends `timeout` at its
deadline, the run `timeout`, and no join is launched.
"""

from __future__ import annotations

import queue
import re
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from portal.clusters import actions
from portal.clusters.models import Cluster, ClusterNode, ReprovisionRun
from portal.core.status import expire_statuses
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Credential, Node
from tests.e2e.clusters.hosts import bake_stand_in
from tests.helpers import InlineWorker, stubbed_broker
from tests.hosts import HostsUnavailable, boot_hosts, unavailable_reason
from tests.hosts.reimage import reimage_command

RUN_WAIT = 300  # seconds: three re-images, registrations, readiness, the formation


def unavailable(reason):
    import os

    if os.environ.get("REQUIRE_TEST_HOSTS"):
        pytest.fail(f"test hosts required but unavailable: {reason}")
    pytest.skip(f"test hosts unavailable: {reason}")


@pytest.fixture(scope="module")
def pve_hosts():
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(
            3, extra_packages=("corosync",), apt_repo=False, prepare_root=bake_stand_in
        ) as pool:
            yield pool
    except HostsUnavailable as error:
        unavailable(str(error))


@pytest.fixture
def portal_url(pve_hosts, transactional_db, settings):
    """The portal on the bridge's address, where the hosts' first-boot units reach it."""
    from pytest_django.live_server_helper import LiveServer

    gateway = pve_hosts.subnet.rsplit(".", 1)[0] + ".1"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, gateway]
    server = LiveServer(f"{gateway}:0")
    try:
        yield f"http://{gateway}:{server.thread.port}"
    finally:
        server.stop()


@pytest.fixture
def worker(settings, tmp_path):
    """The worker and beat: due jobs, the clusters' tasks as published, the deadline sweep."""
    from django.conf import settings as django_settings

    settings.PLAYBOOKS_DIR = django_settings.BASE_DIR / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 10
    settings.CLUSTERS_READY_RECHECK_SECONDS = 2
    settings.CLUSTERS_JOIN_TIMEOUT = 60
    settings.CLUSTERS_QUORUM_TIMEOUT = 30
    tasks: queue.Queue = queue.Queue()

    def publish(task, *args, **kwargs):
        if task.name.startswith("clusters."):
            tasks.put((task, kwargs.get("args") or (args[0] if args else ())))

    def tick():
        while not tasks.empty():
            task, arguments = tasks.get()
            task(*arguments)  # runs the task's function here, as a worker would
        expire_statuses()

    with stubbed_broker(side_effect=publish), InlineWorker(tick=tick, interval=0.5):
        yield


def mac_of(host) -> str:
    return host.run("cat /sys/class/net/host0/address", check=True).stdout.strip()


def make_cluster(pool, portal_url, name="e2e-pve", first_boot_urls=None) -> Cluster:
    credential = Credential.objects.create(
        name=f"{name}-root",
        kind="ssh_key",
        username="root",
        secret=Path(pool.ssh_key_path).read_text(),
    )
    cluster = Cluster.objects.create(name=name)
    script_url = f"{portal_url}/api/clusters/post-install?mac={{mac}}"
    for host in pool:
        node = Node.objects.create(
            name=host.name,
            address=host.address,
            ssh_port=host.ssh_port,
            ssh_user="root",
            purpose=NodePurpose.PROXMOX_NODE,
            credential=credential,
        )
        url = (first_boot_urls or {}).get(host.name, script_url)
        ClusterNode.objects.create(
            node=node,
            cluster=cluster,
            mac=mac_of(host),
            power_driver="test-host",
            power_options={"command": reimage_command(pool.run_id, host.name, url)},
        )
    cluster.init_node = ClusterNode.objects.get(node__name=pool[0].name)
    cluster.save()
    return cluster


def wait_run(run: ReprovisionRun, timeout=RUN_WAIT) -> ReprovisionRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in ("requested", "running"):
            return run
        time.sleep(1)
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout} s: {timeline(run)}")


def timeline(run: ReprovisionRun) -> str:
    lines = []
    for node_run in run.node_runs.select_related("cluster_node__node").order_by("pk"):
        moves = " -> ".join(
            f"{event.status} ({event.reason})" for event in node_run.history.order_by("pk")
        )
        lines.append(f"{node_run.cluster_node.node.name}: {moves}")
    return "\n".join(lines)


def phases(run: ReprovisionRun) -> str:
    """Where the time went (the figures of the issue's note), from the history rows."""
    events = list(run.events.order_by("at"))
    first = events[0].at

    def last(status):
        return max(e.at for e in events if e.status == status)

    def seconds(since, until):
        return f"{(until - since).total_seconds():.1f} s"

    form = run.node_runs.first().current_job
    return (
        f"all rebooting after {seconds(first, last('rebooting'))}, last registration after "
        f"{seconds(first, last('registered'))}, all ready {seconds(first, last('ready'))}, "
        f"last registration -> clustered {seconds(last('registered'), last('clustered'))} "
        f"(formation job {seconds(form.started_at, form.finished_at)})"
    )


def pvecm_status(host) -> tuple[int, str]:
    result = host.run("pvecm status", timeout=30)
    return result.returncode, result.stdout


def members(output: str) -> int:
    line = next(li for li in output.splitlines() if li.strip().startswith("Nodes:"))
    return int(line.split(":", 1)[1])


def operator():
    user, _ = get_user_model().objects.get_or_create(username="e2e-operator", is_staff=True)
    return user


def test_reprovision_all_forms_the_cluster_and_one_member_re_joins(pve_hosts, portal_url, worker):
    cluster = make_cluster(pve_hosts, portal_url)
    marker = "/root/before-reprovision"
    for host in pve_hosts:
        host.run(f"touch {marker}", check=True)
    started = time.monotonic()
    run = wait_run(actions.start_run(operator(), cluster, "all", 15))
    took = time.monotonic() - started
    assert run.status == "clustered", f"{run.status}: {run.reason}\n{timeline(run)}"
    for host in pve_hosts:
        assert host.run(f"test -e {marker}").returncode == 1  # re-imaged: the file is gone
        rc, output = pvecm_status(host)
        assert rc == 0 and re.search(r"Quorate:\s+Yes", output), output
        assert members(output) == 3, output
    statuses = {nr.cluster_node.node.name: nr.status for nr in run.node_runs.all()}
    assert set(statuses.values()) == {"clustered"}, statuses
    pinned = Node.objects.filter(host_keys_pinned_how="registered").count()
    assert pinned == 3  # each install's own keys, from its signed registration
    print(f"reprovision of 3 hosts -> clustered in {took:.1f} s; {phases(run)}")

    # One member again: removed from the cluster by a survivor first, re-imaged, re-joined.
    member = ClusterNode.objects.get(node__name=pve_hosts[2].name)
    again = wait_run(actions.start_run(operator(), cluster, [member], 15))
    assert again.status == "clustered", f"{again.status}: {again.reason}\n{timeline(again)}"
    form_job = again.node_runs.get().current_job
    assert form_job.extra_vars["proxmox_cluster_remove"], form_job.extra_vars
    for host in pve_hosts:
        rc, output = pvecm_status(host)
        assert rc == 0 and members(output) == 3, output


def test_a_host_that_never_registers_times_out_and_no_join_is_launched(
    pve_hosts, portal_url, worker, settings
):
    settings.CLUSTERS_PHASE_MINUTES = {**settings.CLUSTERS_PHASE_MINUTES, "rebooting": 0.75}
    silent = pve_hosts[1].name
    nowhere = f"{portal_url}/api/clusters/post-install-nowhere?mac={{mac}}"  # a 404 forever
    cluster = make_cluster(
        pve_hosts, portal_url, name="e2e-late", first_boot_urls={silent: nowhere}
    )
    run = wait_run(actions.start_run(operator(), cluster, "all", 15))
    assert run.status == "timeout", f"{run.status}: {run.reason}\n{timeline(run)}"
    by_name = {nr.cluster_node.node.name: nr for nr in run.node_runs.all()}
    late = by_name[silent]
    assert late.status == "timeout" and "rebooting" in late.reason, late.reason
    others = [nr for name, nr in by_name.items() if name != silent]
    assert all(nr.status != "clustered" for nr in others)
    formation = [nr.current_job for nr in by_name.values() if nr.current_job]
    assert all(job.playbook != "cluster_form.yml" for job in formation), formation
    for host in pve_hosts:  # nobody joined anything: no cluster on any host
        rc, _ = pvecm_status(host)
        assert rc != 0
