"""Restart and rebuild of fleet VMs on three real hosts, end to end through the portal's API.

Three test hosts of the module's own pool (a rebuild re-images a host, so not the session's
shared pool) are the VMs of two customers. The real agent, installed by the node_agent
role, beats to the portal on the hosts' bridge. Then, through POST /api/vms/{id}/restart
and /rebuild, everything is the product's own path:

    restart: the fleet.restart job reboots the VM (reboot module, boot id checked, agent
    running) -> a heartbeat whose uptime shows a boot after the request -> succeeded;
    rebuild: the test-host power driver re-images the host (disk back to its install, new
    SSH host keys) -> SSH answers, the new key is pinned (accepted for the requester) ->
    the held fleet.rebuild job runs -> the agent is installed again (a new token) -> its
    heartbeat from the new boot -> succeeded.

The test acts as the worker and the beat: inline threads run due jobs, one of them also the
fleet's Celery tasks as they are published, the operations' pass and the deadline sweep.
"""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.choices import PlanTier
from portal.core.status import expire_statuses
from portal.fleet import selectors
from portal.fleet.actions import operate
from portal.fleet.choices import OperationStatus as O
from portal.fleet.models import VM, VMOperation
from portal.monitoring import actions as monitoring
from portal.monitoring.models import NodeLiveness
from portal.nodes.actions import do_record_host_key
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Credential, Node
from tests.e2e.conftest import unavailable
from tests.factories import CustomerFactory, MembershipFactory, UserFactory, plan
from tests.helpers import InlineWorker, stubbed_broker
from tests.hosts import HostsUnavailable, boot_hosts, unavailable_reason
from tests.hosts.reimage import reimage_command
from tests.waiting import wait_for

INTERVAL = 5  # the agents' heartbeat interval (seconds)
MARKER = "/root/fleet-marker"


@pytest.fixture(scope="module")
def fleet_hosts():
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(3, apt_repo=False) as pool:
            yield pool
    except HostsUnavailable as error:
        unavailable(str(error))


@pytest.fixture
def portal_url(fleet_hosts, transactional_db, settings):
    """The portal (a live server) on the bridge's address, where the agents beat to."""
    from pytest_django.live_server_helper import LiveServer

    from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath

    gateway = fleet_hosts.subnet.rsplit(".", 1)[0] + ".1"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, gateway]
    server = LiveServer(f"{gateway}:0", start=False)
    static = server.thread.static_handler
    server.thread.static_handler = lambda app: HeartbeatFastPath(static(app))
    server.start()
    try:
        yield f"http://{gateway}:{server.thread.port}"
    finally:
        server.stop()


@pytest.fixture
def worker(settings, tmp_path, portal_url):
    """Due jobs, the fleet's tasks as published, the operations' pass, the deadline sweep."""
    from django.conf import settings as django_settings

    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 10
    settings.MONITORING_PORTAL_URL = portal_url
    settings.FLEET_REBOOT_TIMEOUT = 120
    settings.FLEET_HEARTBEAT_TIMEOUT = 60
    tasks: queue.Queue = queue.Queue()

    def publish(task, *args, **kwargs):
        if task.name.startswith("fleet."):
            tasks.put((task, kwargs.get("args") or (args[0] if args else ())))

    def tick():
        while not tasks.empty():
            task, arguments = tasks.get()
            task(*arguments)  # runs the task's function here, as a worker would
        operate.advance_operations()
        expire_statuses()

    # Three job runners (one of them the beat): the VMs' jobs run side by side, as with a
    # worker of three processes; a job is claimed once however many look at it.
    with (
        stubbed_broker(side_effect=publish),
        InlineWorker(tick=tick, interval=0.3),
        InlineWorker(interval=0.3),
        InlineWorker(interval=0.3),
    ):
        yield


def make_vms(pool) -> list[VM]:
    """The three hosts as VMs: two of customer A, one of customer B."""
    credential = Credential.objects.create(
        name=f"fleet-{pool.run_id}",
        kind="ssh_key",
        username="root",
        secret=Path(pool.ssh_key_path).read_text(),
    )
    customers = [CustomerFactory(plan=plan(PlanTier.TEAM)), CustomerFactory()]
    vms = []
    for host, owner in zip(pool, [customers[0], customers[0], customers[1]], strict=True):
        node = Node.objects.create(
            name=host.name,
            address=host.address,
            ssh_port=host.ssh_port,
            ssh_user="root",
            become=False,
            purpose=NodePurpose.FLEET_HOST,
            credential=credential,
        )
        do_record_host_key(node)
        vms.append(
            VM.objects.create(
                node=node,
                customer=owner,
                power_driver="test-host",
                power_options={"command": reimage_command(pool.run_id, host.name)},
            )
        )
    return vms


def client_of(customer, role="owner") -> APIClient:
    client = APIClient()
    client.force_authenticate(
        MembershipFactory(customer=customer, user=UserFactory(), role=role).user
    )
    return client


BOOT_TIME = (
    "python3 -c \"import os; b = int([l for l in open('/proc/stat') if l.startswith('btime')]"
    "[0].split()[1]); s = int(open('/proc/1/stat').read().rsplit(')', 1)[1].split()[19]); "
    "print(b + s / os.sysconf('SC_CLK_TCK'))\""
)


def boot_time(host) -> float:
    """When the host's PID 1 started (epoch seconds), read on the host itself."""
    return float(host.run(BOOT_TIME, check=True).stdout)


def beating_since(vm: VM, since) -> bool:
    row = NodeLiveness.objects.filter(node_id=vm.pk).first()
    return bool(row and row.status == "up" and row.last_seen_at and row.last_seen_at > since)


def all_ended(jobs) -> bool:
    for job in jobs:
        job.refresh_from_db()
    return all(job.is_terminal for job in jobs)


def ended(job_id: int) -> VMOperation | None:
    operation = VMOperation.objects.select_related("job", "agent_job").get(job_id=job_id)
    return operation if operation.is_terminal else None


def story(operation: VMOperation) -> str:
    jobs = [job for job in (operation.job, operation.agent_job) if job is not None]
    lines = [f"{operation.kind}: {operation.status} ({operation.reason})"]
    for job in jobs:
        lines.append(f"job {job.pk} {job.action} {job.status}: {job.reason}")
        lines += [e for e in job.events.values_list("stdout", flat=True) if e.strip()][-8:]
    return "\n".join(lines)


def figures(installs, restart_op, rebuild_op, started, requested) -> str:
    """Where the time went (README, "Restart and rebuild")."""

    def took(since, until):
        return f"{(until - since).total_seconds():.1f} s"

    def run(job):
        return took(job.started_at, job.finished_at)

    installed = max(job.finished_at for job in installs)
    return (
        f"agents installed on 3 hosts in {took(started, installed)}; "
        f"restart -> succeeded {took(requested, restart_op.finished_at)} (job "
        f"{run(restart_op.job)}); rebuild -> succeeded {took(requested, rebuild_op.finished_at)} "
        f"(re-imaged and SSH up after {took(requested, rebuild_op.job.started_at)}, check job "
        f"{run(rebuild_op.job)}, agent job {run(rebuild_op.agent_job)})"
    )


def test_restart_and_rebuild_on_three_hosts_of_two_customers(fleet_hosts, portal_url, worker):
    vms = make_vms(fleet_hosts)
    hosts = {host.name: host for host in fleet_hosts}
    started = timezone.now()
    installs = [monitoring.do_install_agent(vm.node, interval=INTERVAL) for vm in vms]
    wait_for(lambda: all_ended(installs), 90, 0.3, "the agent installs")
    assert {job.status for job in installs} == {"successful"}
    wait_for(lambda: all(beating_since(vm, started) for vm in vms), 30, 0.3, "first heartbeats")
    assert [selectors.vm_status(VM.objects.get(pk=vm.pk)) for vm in vms] == ["online"] * 3

    restarted, rebuilt = vms[0], vms[2]  # customer A's first VM, customer B's VM
    for vm in (restarted, rebuilt):
        assert hosts[vm.node.name].run(f"echo before > {MARKER}").returncode == 0
    boot_before = boot_time(hosts[restarted.node.name])
    pin_before = rebuilt.node.host_keys

    owner_a, owner_b = client_of(restarted.customer), client_of(rebuilt.customer)
    assert owner_b.post(f"/api/vms/{restarted.pk}/restart").status_code == 404
    assert (
        client_of(restarted.customer, "member").post(f"/api/vms/{restarted.pk}/restart").status_code
        == 403
    )
    requested = timezone.now()
    restart = owner_a.post(f"/api/vms/{restarted.pk}/restart")
    assert restart.status_code == 202, restart.content
    rebuild = owner_b.post(f"/api/vms/{rebuilt.pk}/rebuild")
    assert rebuild.status_code == 202, rebuild.content
    busy = owner_b.post(f"/api/vms/{rebuilt.pk}/restart")
    assert busy.status_code == 409 and busy.json()["code"] == "busy"

    restart_op = wait_for(lambda: ended(restart.json()["job"]), 120, 0.5, "the restart's end")
    assert restart_op.status == O.SUCCEEDED, story(restart_op)
    rebuild_op = wait_for(lambda: ended(rebuild.json()["job"]), 150, 0.5, "the rebuild's end")
    assert rebuild_op.status == O.SUCCEEDED, story(rebuild_op)

    # Restart: back online with a new boot time; its disk as it was.
    new_boot = restart_op.booted_at.timestamp()
    assert new_boot > boot_before and new_boot >= requested.timestamp() - 1
    assert new_boot == pytest.approx(boot_time(hosts[restarted.node.name]), abs=0.05)
    assert hosts[restarted.node.name].run(f"cat {MARKER}").stdout.strip() == "before"
    # Rebuild: re-imaged (the marker gone, new host keys pinned), the agent back and
    # beating from the new boot, the same VM (id, node, customer, address).
    host = hosts[rebuilt.node.name]
    assert host.run(f"test -e {MARKER}").returncode != 0
    assert host.run("systemctl is-active portal-agent").stdout.strip() == "active"
    node = Node.objects.get(pk=rebuilt.pk)
    assert node.host_keys and node.host_keys != pin_before
    assert node.host_keys_pinned_how == "accepted"
    assert rebuild_op.agent_job.status == "successful"
    wait_for(lambda: beating_since(rebuilt, rebuild_op.finished_at), 20, 0.3, "beats go on")
    same = VM.objects.select_related("node").get(pk=rebuilt.pk)
    assert (same.customer_id, same.node.address) == (rebuilt.customer_id, host.address)

    for vm, job, kind in ((restarted, restart, "restart"), (rebuilt, rebuild, "rebuild")):
        row = VM.objects.get(pk=vm.pk)
        assert (row.last_action_id, row.last_action_kind, row.last_action_failed) == (
            job.json()["job"],
            kind,
            False,
        )
        assert selectors.vm_status(row) == "online"
        listed = owner_a if vm == restarted else owner_b
        steps = listed.get(f"/api/vms/{vm.pk}/operations").json()
        assert steps[0]["status"] == "succeeded" and steps[0]["booted_at"]
    print(figures(installs, restart_op, rebuild_op, started, requested))
    # The VM that was left alone: untouched, still beating.
    assert beating_since(vms[1], restart_op.finished_at)
    assert not VMOperation.objects.filter(vm=vms[1]).exists()
