"""Agent-less nodes: one batched probe run (playbooks/node_probe.yml) and its result handler."""

from datetime import timedelta

import pytest
from django.db import connection  # noqa: F401 - read by the skipif conditions
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from portal.monitoring import actions, probe
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Sample
from portal.monitoring.tasks import probe_nodes
from portal.nodes.choices import Connection
from tests.factories import NodeFactory
from tests.helpers import run_due_jobs, stubbed_broker

pytestmark = pytest.mark.django_db

REPORT = {
    "cpu_percent": 12.5,
    "memory_percent": 40.0,
    "disk_percent": 55.0,
    "disk_used_gb": 10.25,
    "uptime_seconds": 3600,
    "load": [0.5, 0.4, 0.3],
}


@pytest.fixture(autouse=True)
def quiet_broker(tmp_path, settings):
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    with stubbed_broker() as stub:
        yield stub


def local_node(name="probe-local"):
    return NodeFactory(name=name, connection=Connection.LOCAL, credential=None, address="127.0.0.1")


def finished_with(job, results, status=JobStatus.SUCCESSFUL):
    """The job as if its playbook had reported ``results`` with set_stats."""
    JobEvent.objects.create(
        job=job,
        counter=1,
        event="playbook_on_stats",
        created=timezone.now(),
        event_data={"artifact_data": {probe.RESULTS: results}},
    )
    Job.objects.filter(pk=job.pk).update(status=status)
    job.refresh_from_db()
    return job


def test_one_job_probes_every_agentless_node_and_none_while_it_is_active():
    nodes = [NodeFactory() for _ in range(5)]
    heard = NodeFactory()  # its agent has beaten: not probed
    NodeLiveness.objects.create(node=heard, token_hash="x" * 64, last_seq=3)
    NodeFactory(enabled=False)
    NodeFactory(credential=None)  # SSH without a credential cannot be probed
    issued = NodeFactory()  # a token issued, no heartbeat yet: probed
    NodeLiveness.objects.create(node=issued, next_token_hash="y" * 64)

    probe_nodes()
    jobs = list(Job.objects.filter(action=probe.PROBE))
    assert len(jobs) == 1
    assert jobs[0].playbook == "node_probe.yml"
    assert sorted(jobs[0].nodes.values_list("pk", flat=True)) == sorted(
        [node.pk for node in nodes] + [issued.pk]
    )

    probe_nodes()  # the first is still dispatched: skipped
    assert Job.objects.filter(action=probe.PROBE).count() == 1
    Job.objects.filter(action=probe.PROBE).update(status=JobStatus.SUCCESSFUL)
    probe_nodes()
    assert Job.objects.filter(action=probe.PROBE).count() == 2


def test_no_job_without_agentless_nodes():
    NodeLiveness.objects.create(node=NodeFactory(), token_hash="x" * 64, last_seq=1)
    assert probe.do_probe() is None
    assert not Job.objects.filter(action=probe.PROBE).exists()


@pytest.mark.django_db(transaction=True)
def test_a_real_local_run_stores_a_sample_and_an_unreachable_node_is_not_up(settings):
    settings.JOB_CONNECT_TIMEOUT = 5
    here = local_node()
    closed = NodeFactory(name="probe-closed", address="127.0.0.1", ssh_port=1)
    job = probe.do_probe()
    assert job is not None and job.nodes.count() == 2
    run_due_jobs()
    job.refresh_from_db()
    assert job.status in (JobStatus.FAILED, JobStatus.SUCCESSFUL), job.reason

    sample = Sample.objects.get(node_id=here.pk)
    assert 0 <= sample.cpu_percent <= 100 and 0 < sample.memory_percent <= 100
    assert 0 < sample.disk_percent <= 100 and sample.disk_used_gb > 0
    assert sample.load1 is not None
    row = NodeLiveness.objects.get(node=here)
    assert row.status == Liveness.UP and row.last_seq == 0 and row.uptime_seconds > 0
    assert row.next_due_at > timezone.now()
    assert row.interval_seconds == settings.MONITORING_PROBE_INTERVAL

    assert not Sample.objects.filter(node_id=closed.pk).exists()
    actions.evaluate_liveness()
    assert NodeLiveness.objects.get(node=closed).status == Liveness.DOWN
    assert NodeLiveness.objects.get(node=here).status == Liveness.UP


def test_the_handler_validates_like_a_heartbeat_and_never_overrides_an_agent():
    good, bad, agent, gone = (NodeFactory() for _ in range(4))
    job = probe.do_probe()
    NodeLiveness.objects.create(node=agent, token_hash="x" * 64, last_seq=7, cpu_percent=1.0)
    results = {
        good.name: REPORT,
        bad.name: {**REPORT, "disk_percent": 180.0},
        agent.name: REPORT,
    }
    outcome = probe.apply_probe_result(finished_with(job, results, JobStatus.FAILED))
    assert outcome == {"stored": [good.pk], "unreachable": [bad.pk, gone.pk]}
    assert list(Sample.objects.values_list("node_id", flat=True)) == [good.pk]
    assert NodeLiveness.objects.get(node=agent).cpu_percent == 1.0
    for node in (bad, gone):
        row = NodeLiveness.objects.get(node=node)
        assert row.status == Liveness.UNKNOWN and row.next_due_at is not None


def test_an_unreachable_node_that_was_up_goes_down_at_its_due_time_not_before():
    node = NodeFactory()
    first = finished_with(probe.do_probe(), {node.name: REPORT})
    probe.apply_probe_result(first)
    due = NodeLiveness.objects.get(node=node).next_due_at
    second = finished_with(probe.do_probe(), {}, JobStatus.FAILED)
    probe.apply_probe_result(second)
    assert NodeLiveness.objects.get(node=node).next_due_at == due
    actions.evaluate_liveness(now=due - timedelta(seconds=1))
    assert NodeLiveness.objects.get(node=node).status != Liveness.DOWN
    actions.evaluate_liveness(now=due)
    assert NodeLiveness.objects.get(node=node).status == Liveness.DOWN
    third = finished_with(probe.do_probe(), {node.name: REPORT})
    probe.apply_probe_result(third)
    assert NodeLiveness.objects.get(node=node).status == Liveness.UP


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="concurrent transactions: PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_probing_at_once_launch_one_job():
    import threading

    from django.db import connections

    for _ in range(3):
        NodeFactory()
    start = threading.Barrier(2)
    outcomes = []

    def fire():
        try:
            start.wait()
            job = probe.do_probe()
            outcomes.append(job.pk if job else None)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count(None) == 1
    assert Job.objects.filter(action=probe.PROBE).count() == 1
