"""Monitoring on a real host: the node_agent role installs the agent, its heartbeats reach
the portal over the test bridge, a rerun rotates the token, a stopped agent is down at its
due time."""

import json
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings as django_settings
from django.utils import timezone

from portal.accounts.actions import hash_token
from portal.jobs import actions as jobs
from portal.jobs.models import JobEvent
from portal.monitoring import actions
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Sample
from tests.e2e.conftest import FAST_PATH_ANSWERS
from tests.helpers import stubbed_broker
from tests.waiting import wait_for

INTERVAL = 5
TICK = 0.25


def install(node):
    with stubbed_broker():
        job = actions.do_install_agent(node, interval=INTERVAL)
    jobs.execute(job.pk, job.signature, worker="e2e")
    job.refresh_from_db()
    assert job.status == "successful", "\n".join(job.events.values_list("stdout", flat=True))
    token = job.secrets()["node_agent_token"]
    printed = [
        json.dumps(e, default=str)
        for e in JobEvent.objects.filter(job=job).values("stdout", "event_data")
    ]
    assert not any(token in text for text in printed), "the token reached a job event"
    return token


def beats_with(node, token_hash, after):
    row = NodeLiveness.objects.get(node=node)
    return (
        row.status == Liveness.UP
        and row.token_hash == token_hash
        and not row.next_token_hash
        and row.last_seen_at
        and row.last_seen_at > after
    )


def test_the_agent_beats_rotates_and_is_down_at_its_due_time(
    test_hosts, portal_nodes, portal_on_bridge, settings, tmp_path, api
):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.MONITORING_PORTAL_URL = portal_on_bridge
    settings.MONITORING_LATE_SECONDS = 1
    settings.MONITORING_GRACE_SECONDS = 4
    node = portal_nodes[2]
    host = test_hosts[node.name]

    first = install(node)
    started = timezone.now()
    wait_for(lambda: beats_with(node, hash_token(first), started), 30, TICK, "first heartbeats")
    assert 200 in FAST_PATH_ANSWERS  # answered by the production WSGI fast path
    wait_for(lambda: Sample.objects.filter(node=node).count() >= 2, 15, TICK, "two samples")
    sample = Sample.objects.filter(node=node).latest("at")
    assert 0 <= sample.cpu_percent <= 100 and 0 < sample.memory_percent < 100
    assert sample.disk_used_gb > 0 and sample.load1 is not None
    row = NodeLiveness.objects.get(node=node)
    assert row.agent_version and row.uptime_seconds > 0 and row.interval_seconds == INTERVAL

    # The token: a 0600 file of the agent's user; never in the unit or a command line.
    assert host.run("stat -c '%a %U' /etc/portal-agent/token").stdout.split() == [
        "600",
        "portal-agent",
    ]
    assert first not in host.run("systemctl cat portal-agent").stdout
    assert first not in host.run("ps -eo args").stdout

    # A rerun rotates it: the agent goes on with the new one, the old one is refused.
    second = install(node)
    assert second != first
    rotated = timezone.now()
    wait_for(
        lambda: beats_with(node, hash_token(second), rotated),
        30,
        TICK,
        "heartbeats with the rotated token",
    )
    old = api.put(
        f"/api/nodes/{node.pk}/heartbeat",
        {"cpu_percent": 1, "memory_percent": 1, "disk_percent": 1, "disk_used_gb": 1, "seq": 2**62},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {first}",
    )
    assert old.status_code == 404

    # Stop the agent: late, then down at its due time (± one evaluator tick).
    assert host.run("systemctl stop portal-agent").returncode == 0
    due = NodeLiveness.objects.get(node=node).next_due_at
    assert due > timezone.now()
    seen_late = False
    while timezone.now() < due + timedelta(seconds=10):
        actions.evaluate_liveness()
        row = NodeLiveness.objects.get(node=node)
        seen_late = seen_late or row.status == Liveness.LATE
        if row.status == Liveness.DOWN:
            break
        due = row.next_due_at  # a beat sent just before the stop may land late
        time.sleep(TICK)
    assert row.status == Liveness.DOWN
    assert seen_late
    assert due <= row.status_changed_at <= due + timedelta(seconds=TICK + 0.5)

    # Started again, it is up again by itself.
    assert host.run("systemctl start portal-agent").returncode == 0
    back = timezone.now()
    wait_for(lambda: beats_with(node, hash_token(second), back), 30, TICK, "up again")
