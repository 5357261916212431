"""Update rollouts on three real hosts as the VMs of two customers, their real agents
heartbeating to the portal on the bridge: an update whose canary fails halts after the
canary with the other two untouched (still on the old version, in their files and in their
heartbeats); an update that passes reaches all three, each seen in its own heartbeat.

The jobs and the engine's beat run in an InlineWorker (the real fleet_update.yml over SSH);
soaks are short (SOAK seconds) and the agents beat every INTERVAL seconds.
"""

import itertools
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from portal.fleet.actions import rollout_engine
from portal.fleet.actions import rollouts as actions
from portal.fleet.choices import RolloutStatus as R
from portal.fleet.choices import TargetStatus as T
from portal.fleet.models import VM, Rollout, Update
from portal.jobs.models import Job
from portal.monitoring import actions as monitoring
from portal.monitoring.models import NodeLiveness
from tests.e2e.conftest import unavailable
from tests.factories import CustomerFactory
from tests.helpers import InlineWorker, stubbed_broker
from tests.hosts import HostsUnavailable, boot_hosts, unavailable_reason
from tests.waiting import wait_for

INTERVAL = 5  # the agent's smallest heartbeat interval
SOAK = 3
OLD, BAD, NEW = "1.0.0", "1.1.0", "2.0.0"
VERSION_FILE = "/etc/portal-product/version"
TICK = 0.5


@pytest.fixture(scope="module")
def test_hosts():
    """This module's own three hosts (no volume), so the session's pool is left as it was
    (its hosts keep no product version file or update jobs of ours)."""
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(3) as pool:
            yield pool
    except HostsUnavailable as error:
        unavailable(str(error))


@pytest.fixture
def fleet(test_hosts, portal_nodes, portal_on_bridge, settings, tmp_path):
    """The pool's three hosts as VMs of customers A (two) and B (one), on OLD, their agents
    beating to the portal."""
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.MONITORING_PORTAL_URL = portal_on_bridge
    settings.FLEET_ROLLOUT_HEALTH_TIMEOUT = 4 * INTERVAL
    a, b = CustomerFactory(), CustomerFactory()
    vms = [
        VM.objects.create(node=node, customer=a if index < 2 else b)
        for index, node in enumerate(portal_nodes)
    ]
    hosts = {vm.pk: test_hosts[vm.node.name] for vm in vms}
    for host in hosts.values():
        host.run(f"mkdir -p /etc/portal-product && echo {OLD} > {VERSION_FILE}", check=True)
    with stubbed_broker(), InlineWorker(tick=rollout_engine.advance_all, interval=TICK):
        for vm in vms:
            with transaction.atomic():
                monitoring.do_install_agent(vm.node, interval=INTERVAL)
        wait_for(lambda: reported(vms) == [OLD] * 3, 120, TICK, "heartbeats reporting OLD")
        yield vms, hosts


def reported(vms):
    """The product versions the VMs' heartbeats last reported, in order."""
    rows = dict(
        NodeLiveness.objects.filter(node__in=[vm.pk for vm in vms]).values_list(
            "node_id", "product_version"
        )
    )
    return [rows.get(vm.pk, "") for vm in vms]


def on_disk(hosts, vms):
    return [hosts[vm.pk].run(f"cat {VERSION_FILE}").stdout.strip() for vm in vms]


def ended(rollout):
    rollout.refresh_from_db()
    return rollout.is_terminal and not rollout.targets.filter(status__in=[T.UPDATING, T.SOAKING])


def test_a_failing_canary_halts_and_a_good_update_reaches_all_three(fleet):
    vms, hosts = fleet

    # 1. The canary's update fails: halted after it, the other two never touched.
    bad = Update.objects.create(
        version=BAD, extra_vars={"fleet_update_fail": "canary drill: this update fails"}
    )
    rollout = actions.plan_rollout(None, bad, {"soak_seconds": SOAK})
    wait_for(lambda: ended(rollout), 90, TICK, "the bad rollout to end")
    assert rollout.status == R.HALTED, rollout.reason
    targets = {t.vm_id: t for t in rollout.targets.all()}
    canary = targets[vms[0].pk]
    assert canary.wave == 1 and canary.status == T.FAILED
    assert "canary drill: this update fails" in canary.reason
    assert "canary drill" in rollout.reason and str(vms[0]) in rollout.reason
    for vm in vms[1:]:
        assert (targets[vm.pk].status, targets[vm.pk].job) == (T.PENDING, None)
        assert targets[vm.pk].reason == "not started: the rollout halted"
    assert Job.objects.filter(action="fleet.update").count() == 1
    assert on_disk(hosts, vms) == [OLD] * 3
    canary_vm = VM.objects.get(pk=vms[0].pk)
    assert canary_vm.last_action_kind == "update" and canary_vm.last_action_failed
    assert reported(vms) == [OLD] * 3

    # 2. A good update: wave by wave, each VM seen on it in its own heartbeat.
    good = Update.objects.create(version=NEW)
    rollout = actions.plan_rollout(None, good, {"soak_seconds": SOAK})
    wait_for(lambda: ended(rollout), 150, TICK, "the good rollout to end")
    assert rollout.status == R.COMPLETED, rollout.reason
    results = list(rollout.targets.order_by("wave"))
    assert [(t.wave, t.status) for t in results] == [
        (1, T.SUCCEEDED),
        (2, T.SUCCEEDED),
        (3, T.SUCCEEDED),
    ]
    assert all(t.previous_version == OLD for t in results)
    # the waves were gated: each started after the one before had soaked
    for before, after in itertools.pairwise(results):
        assert after.started_at >= before.soak_until
    assert reported(vms) == [NEW] * 3
    assert on_disk(hosts, vms) == [NEW] * 3
    assert not VM.objects.filter(pk__in=[vm.pk for vm in vms], last_action_failed=True).exists()
    assert Rollout.objects.get(pk=rollout.pk).finished_at
