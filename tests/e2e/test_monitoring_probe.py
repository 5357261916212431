"""Agent-less hosts probed by ONE batched run (playbooks/node_probe.yml) over SSH; a host
whose link is down gets no sample and is down at its due time; back, it is up again."""

import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from portal.jobs import actions as jobs
from portal.jobs.models import Job
from portal.monitoring import actions, probe
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Sample
from tests.helpers import stubbed_broker
from tests.waiting import wait_for


def probe_once():
    with stubbed_broker():
        job = probe.do_probe()
    assert job is not None
    jobs.execute(job.pk, job.signature, worker="e2e")
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
def test_agentless_hosts_are_probed_in_one_run(test_hosts, portal_nodes, settings, tmp_path):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.JOB_SSH_SHARE_SECONDS = 0  # each run its own SSH masters: a dead link is seen
    settings.MONITORING_GRACE_SECONDS = 3
    ids = sorted(node.pk for node in portal_nodes)

    first = probe_once()
    assert first.status == "successful", first.reason
    assert sorted(first.nodes.values_list("pk", flat=True)) == ids
    assert Job.objects.filter(action=probe.PROBE).count() == 1
    assert sorted(Sample.objects.values_list("node_id", flat=True)) == ids
    for sample in Sample.objects.all():
        assert 0 <= sample.cpu_percent <= 100 and 0 < sample.memory_percent < 100
        assert 0 < sample.disk_percent < 100 and sample.disk_used_gb > 0
    assert set(NodeLiveness.objects.values_list("status", flat=True)) == {Liveness.UP}

    cut = portal_nodes[1]
    host = test_hosts[cut.name]
    host.run(
        "setsid sh -c 'sleep 1; ip link set host0 down; sleep 30; ip link set host0 up'"
        " >/dev/null 2>&1 < /dev/null &"
    )
    time.sleep(3)
    second = probe_once()
    assert second.status == "failed"
    assert Sample.objects.filter(node_id=cut.pk).count() == 1
    for node in portal_nodes:
        if node.pk != cut.pk:
            assert Sample.objects.filter(node_id=node.pk).count() == 2
    due = NodeLiveness.objects.get(node=cut).next_due_at
    wait = (due - timezone.now()).total_seconds()
    if wait > 0:
        assert NodeLiveness.objects.get(node=cut).status != Liveness.DOWN
        time.sleep(wait)
    actions.evaluate_liveness()
    assert NodeLiveness.objects.get(node=cut).status == Liveness.DOWN

    # The link comes back by itself (30 s); the next successful probe brings the node up.
    wait_for(
        lambda: probe_once().status == "successful",
        timeout=90,
        interval=3,
        message="a probe that reaches every host again",
    )
    assert NodeLiveness.objects.get(node=cut).status == Liveness.UP
