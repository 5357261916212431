"""Alerts on real hosts, end to end: the agents' heartbeats reach the portal over the test
bridge; a filled disk, a stopped agent and a host cut off the bridge each raise their alert,
which resolves once the cause is gone; a webhook receiver on loopback gets every fired and
resolved notification exactly once, signed.

The three incidents run at once, on three hosts; the test drives the beat tasks itself
(liveness, alerts, delivery) in its wait loop, and ends each incident once its alert is open.
"""

import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from portal.jobs import actions as jobs
from portal.monitoring import actions, alerts, notify
from portal.monitoring.choices import Liveness, NotificationStatus
from portal.monitoring.models import (
    Alert,
    AlertRule,
    NodeLiveness,
    Notification,
    NotificationChannel,
    Sample,
)
from portal.nodes.models import Node
from tests.helpers import stubbed_broker
from tests.waiting import wait_for

INTERVAL = 5  # the shortest heartbeat interval the agent takes
GRACE = 5  # a node is down 10 s after its last beat
TICK = 0.25
DISK_FOR = 5  # the disk rule fires once the disk has been full this long
DOWN_FOR = 2  # the down rule fires once the node has been down this long
FILL = "/srv/fill"  # a 20 MB tmpfs on the host: never the machine's own disk
SECRET = "e2e-webhook-secret"


# --- the webhook receiver -----------------------------------------------------------------


def verify(secret: bytes, headers, body: bytes, tolerance=300) -> bool:
    """The receiver's check, as the README ("Monitoring", notifications) gives it."""
    timestamp = headers["X-Portal-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, headers["X-Portal-Signature"])


class Receiver:
    """An HTTP server on loopback that keeps every POST (headers, raw body) and answers 200."""

    def __init__(self):
        self.posts: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notifications(self) -> list[dict]:
        """Every notification received, each POST's signature checked first."""
        with self.lock:
            posts = list(self.posts)
        items = []
        for headers, body in posts:
            assert verify(SECRET.encode(), headers, body), "a POST with a bad signature"
            items += json.loads(body)["notifications"]
        return items

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


# --- the hosts ----------------------------------------------------------------------------


def bridge_port(host) -> str:
    """The machine's end of the host's veth: its port on the test bridge."""
    index = host.run("cat /sys/class/net/host0/iflink", check=True).stdout.strip()
    for link in Path("/sys/class/net").iterdir():
        if (link / "ifindex").read_text().strip() == index:
            return link.name
    raise AssertionError(f"no interface {index} on the machine for {host.name}")


def set_link(port: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", port, state], check=True, timeout=10)


@pytest.fixture
def hosts(test_hosts, portal_nodes):
    """The three hosts with their nodes; a 20 MB tmpfs at FILL on the first. Afterwards the
    agents are stopped, the tmpfs unmounted, every bridge port up."""
    pairs = [(node, test_hosts[node.name]) for node in portal_nodes]
    first = pairs[0][1]
    mount = f"mkdir -p {FILL} && mount -t tmpfs -o size=20M tmpfs {FILL}"
    assert first.run(mount).returncode == 0
    ports = [bridge_port(host) for _, host in pairs]
    try:
        yield pairs
    finally:
        for port in ports:
            set_link(port, "up")
        for _, host in pairs:
            host.run("systemctl disable --now portal-agent", timeout=30)
        first.run(f"umount {FILL}", timeout=30)


def install(node: Node, **options) -> None:
    with stubbed_broker():
        job = actions.do_install_agent(node, interval=INTERVAL, **options)
    jobs.execute(job.pk, job.signature, worker="e2e")
    job.refresh_from_db()
    assert job.status == "successful", "\n".join(job.events.values_list("stdout", flat=True))


def beating(nodes: list[Node], since: datetime) -> bool:
    rows = NodeLiveness.objects.filter(node__in=nodes, status=Liveness.UP, last_seen_at__gt=since)
    return rows.count() == len(nodes)


# --- the incidents ------------------------------------------------------------------------


@dataclass
class Incident:
    """A cause of ``rule``'s alert on ``node``, already started; ``end`` removes it. The
    loop ends it once its alert is open, and notes the node's liveness row at that moment."""

    name: str
    node: Node
    rule: AlertRule
    end: Callable[[], None]
    ended_at: datetime | None = None
    liveness: NodeLiveness | None = None

    def alert(self) -> Alert | None:
        return Alert.objects.filter(rule=self.rule, node=self.node).first()

    def advance(self) -> bool:
        """End the incident once its alert is open; True once that alert is resolved."""
        alert = self.alert()
        if alert is None:
            return False
        if self.ended_at is None:
            self.liveness = NodeLiveness.objects.get(node=self.node)
            self.ended_at = timezone.now()
            self.end()
        return alert.resolved

    def describe(self) -> str:
        alert = self.alert()
        row = NodeLiveness.objects.get(node=self.node)
        return (
            f"{self.name}: alert {alert and (alert.pk, alert.resolved)}, ended {self.ended_at}, "
            f"node {row.status} disk {row.disk_percent} last seen {row.last_seen_at}"
        )


def rules() -> tuple[AlertRule, AlertRule]:
    """The default rules "Node down" and "Disk space", with a short `for`; no other rule
    runs, so every alert of the test is one of the incidents'."""
    down, _ = AlertRule.objects.update_or_create(
        name="Node down",
        defaults={
            "metric": "down",
            "comparison": ">=",
            "threshold": 1,
            "clear_threshold": None,
            "for_seconds": DOWN_FOR,
            "severity": "high",
            "alert_type": "vm_offline",
            "enabled": True,
        },
    )
    disk, _ = AlertRule.objects.update_or_create(
        name="Disk space",
        defaults={
            "metric": "disk_percent",
            "comparison": ">=",
            "threshold": 80,
            "clear_threshold": 75,
            "for_seconds": DISK_FOR,
            "severity": "warning",
            "alert_type": "disk_space",
            "enabled": True,
        },
    )
    AlertRule.objects.exclude(pk__in=[down.pk, disk.pk]).update(enabled=False)
    return down, disk


def tick(incidents: list[Incident], receiver: Receiver) -> bool:
    """One round of the beat tasks; True once every incident's alert fired and resolved and
    every notification was delivered."""
    actions.evaluate_liveness()
    alerts.evaluate_alerts()
    notify.deliver()
    done = all([incident.advance() for incident in incidents])
    unsent = Notification.objects.exclude(status=NotificationStatus.SENT).exists()
    return done and not unsent and len(receiver.notifications()) == Notification.objects.count()


# --- the test -----------------------------------------------------------------------------


def test_alerts_fire_and_resolve_on_real_hosts_and_notify_a_webhook_once(
    hosts, portal_on_bridge, receiver, settings, tmp_path
):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.MONITORING_PORTAL_URL = portal_on_bridge
    settings.MONITORING_LATE_SECONDS = 1
    settings.MONITORING_GRACE_SECONDS = GRACE
    (full, full_host), (stopped, stopped_host), (cut, cut_host) = hosts
    nodes = [full, stopped, cut]
    down, disk = rules()
    NotificationChannel.objects.create(name="ops", kind="webhook", url=receiver.url, secret=SECRET)

    installed = timezone.now()
    install(full, disk_path=FILL)
    install(stopped)
    install(cut)
    wait_for(lambda: beating(nodes, installed), 30, TICK, "heartbeats from the three hosts")
    # The agent reports the tmpfs (empty), not the host's root; the other two report their
    # root, which must be below the disk rule for their nodes to raise nothing.
    assert Sample.objects.filter(node=full).latest("at").disk_percent < 5
    roots = NodeLiveness.objects.filter(node__in=[stopped, cut]).values_list(
        "disk_percent", flat=True
    )
    assert max(roots) < 75, f"the hosts' root filesystems are too full for this test: {roots}"

    started = timezone.now()
    assert full_host.run(f"fallocate -l 17M {FILL}/blob").returncode == 0
    assert stopped_host.run("systemctl stop portal-agent").returncode == 0
    port = bridge_port(cut_host)
    set_link(port, "down")
    incidents = [
        Incident(
            "disk", full, disk, lambda: full_host.run(f"rm {FILL}/blob", check=True, timeout=30)
        ),
        Incident(
            "stopped agent",
            stopped,
            down,
            lambda: stopped_host.run("systemctl start portal-agent", check=True, timeout=30),
        ),
        Incident("link down", cut, down, lambda: set_link(port, "up")),
    ]
    wait_for(
        lambda: tick(incidents, receiver),
        90,
        TICK,
        lambda: (
            "every alert fired, resolved and notified:\n"
            + "\n".join(incident.describe() for incident in incidents)
        ),
    )

    # Exactly the incidents' alerts, each resolved.
    assert Alert.objects.count() == len(incidents)
    for incident in incidents:
        alert = incident.alert()
        assert alert.resolved and alert.resolved_at >= incident.ended_at
        assert alert.created_at >= started

    # The disk: fired at >= 80 % once it had held for the rule's `for`; resolved below 75 %.
    alert = incidents[0].alert()
    first_full = Sample.objects.filter(node=full, at__gte=started, disk_percent__gte=80)
    assert alert.created_at >= first_full.earliest("at").at + timedelta(seconds=DISK_FOR)
    assert alert.fired_value >= 80 and alert.last_value < 75
    assert alert.type == "disk_space"

    # The silent nodes: down at their due time (last beat + interval + grace, not before),
    # the alert once they had been down for the rule's `for`; up again, it resolved.
    for incident in incidents[1:]:
        alert, row = incident.alert(), incident.liveness
        assert row.status == Liveness.DOWN
        assert row.status_changed_at >= row.last_seen_at + timedelta(seconds=INTERVAL + GRACE)
        assert alert.created_at >= row.status_changed_at + timedelta(seconds=DOWN_FOR)
        assert alert.type == "vm_offline" and alert.severity == "high"
        assert NodeLiveness.objects.get(node=incident.node).status == Liveness.UP

    # The webhook: each alert's fired and resolved notification once, every POST signed.
    received = receiver.notifications()
    expected = {
        (incident.alert().pk, event) for incident in incidents for event in ("fired", "resolved")
    }
    assert sorted((item["alert"]["id"], item["event"]) for item in received) == sorted(expected)
    assert len({item["id"] for item in received}) == len(received)
    names = {incident.alert().pk: incident.node.name for incident in incidents}
    assert all(item["alert"]["node"] == names[item["alert"]["id"]] for item in received)
    assert all(item["alert"]["resolved"] for item in received if item["event"] == "resolved")
    rows = Notification.objects.all()
    assert {(row.status, row.attempts, row.response_status) for row in rows} == {
        (NotificationStatus.SENT, 1, 200)
    }
    # Nothing is left to send: another pass sends nothing again.
    assert notify.deliver()["sent"] == 0
    assert len(receiver.notifications()) == len(received)
