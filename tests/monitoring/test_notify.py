"""Alert notifications from the outbox: a real SMTP server and a webhook receiver on loopback."""

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction  # noqa: F401 - skipif reads connection

from portal.monitoring import notify
from portal.monitoring.alerts import do_create_alert, do_resolve_alert, evaluate_alerts
from portal.monitoring.choices import Liveness
from portal.monitoring.models import (
    Alert,
    AlertRule,
    NodeLiveness,
    Notification,
    NotificationChannel,
)
from portal.nodes.models import NodeGroup
from tests.factories import AdminFactory, CustomerFactory, NodeFactory

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
SECRET = "s3cret-key"


def at(seconds):
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def disk_rule(db):
    AlertRule.objects.all().delete()
    return AlertRule.objects.create(name="disk", metric="disk_percent", threshold=80)


def hot_node(disk=95, group=None):
    node = NodeFactory(group=group)
    NodeLiveness.objects.create(
        node=node,
        status=Liveness.UP,
        status_changed_at=at(0),
        cpu_percent=1,
        memory_percent=1,
        disk_percent=disk,
        load1=0.1,
    )
    return node


def cool(node):
    NodeLiveness.objects.filter(node=node).update(disk_percent=10)


class Receiver:
    """An HTTP server on loopback that records every POST; ``statuses`` are answered first
    (e.g. [500, 500] fails twice), 200 afterwards."""

    def __init__(self, statuses=(), delay=0.0):
        self.requests = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self):
        """The payloads answered 2xx whose signature verifies."""
        out = []
        for headers, body, status in self.requests:
            assert notify.verify(
                SECRET, headers["X-Portal-Timestamp"], body, headers["X-Portal-Signature"]
            )
            if status < 300:
                out.append(json.loads(body))
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()


def webhook(url, **fields):
    return NotificationChannel.objects.create(
        name=fields.pop("name", "hook"), kind="webhook", url=url, secret=SECRET, **fields
    )


class Inbox:
    def __init__(self):
        self.messages = []
        self.reject = 0  # this many messages are refused first

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            self.reject -= 1
            return "554 5.7.1 Rejected for the test"
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


def test_an_alert_raised_by_the_evaluator_is_emailed_through_smtp(disk_rule, smtp):
    NotificationChannel.objects.create(
        name="ops", kind="email", emails=["ops@example.com", "oncall@example.com"]
    )
    node = hot_node()
    evaluate_alerts(at(0))
    assert notify.deliver(at(1)) == {"sent": 1, "retry": 0, "messages": 1}
    ((recipients, content),) = smtp.messages
    assert sorted(recipients) == ["oncall@example.com", "ops@example.com"]
    assert node.name in content and "fired" in content
    row = Notification.objects.get()
    assert (row.status, row.response_status, row.sent_at) == ("sent", 250, at(1))
    assert notify.deliver(at(2))["messages"] == 0
    assert len(smtp.messages) == 1


def test_an_email_the_smtp_server_refuses_is_retried(disk_rule, smtp, settings):
    settings.MONITORING_NOTIFY_BACKOFF = 0
    NotificationChannel.objects.create(name="ops", kind="email", emails=["ops@example.com"])
    smtp.reject = 1
    hot_node()
    evaluate_alerts(at(0))
    assert notify.deliver(at(1))["retry"] == 1
    row = Notification.objects.get()
    assert row.status == "pending" and "554" in row.last_error
    assert notify.deliver(at(2))["sent"] == 1
    assert len(smtp.messages) == 1


def test_a_webhook_gets_each_notification_once_signed(disk_rule, receiver):
    hook = receiver()
    webhook(hook.url)
    node = hot_node()
    evaluate_alerts(at(0))
    notify.deliver(at(1))
    notify.deliver(at(2))
    (payload,) = hook.delivered()
    (item,) = payload["notifications"]
    assert item["event"] == "fired" and item["alert"]["node_id"] == node.pk
    cool(node)
    evaluate_alerts(at(10))
    notify.deliver(at(11))
    assert [p["notifications"][0]["event"] for p in hook.delivered()] == ["fired", "resolved"]
    assert len(hook.requests) == 2


def test_a_tampered_or_stale_body_does_not_verify():
    now = str(int(time.time()))
    good = notify.sign(SECRET, now, b'{"a":1}')
    assert good.startswith("sha256=") and notify.verify(SECRET, now, b'{"a":1}', good)
    assert not notify.verify(SECRET, now, b'{"a":2}', good)
    assert not notify.verify("other", now, b'{"a":1}', good)
    old = str(int(time.time()) - 3600)
    assert not notify.verify(SECRET, old, b'{"a":1}', notify.sign(SECRET, old, b'{"a":1}'))


def test_alerts_of_one_pass_go_out_as_one_message_per_group(disk_rule, receiver):
    hook = receiver()
    webhook(hook.url)
    east, west = NodeGroup.objects.create(name="east"), NodeGroup.objects.create(name="west")
    for group in (east, east, west):
        hot_node(group=group)
    evaluate_alerts(at(0))
    assert notify.deliver(at(1)) == {"sent": 3, "retry": 0, "messages": 2}
    sizes = sorted((p["node_group_id"], len(p["notifications"])) for p in hook.delivered())
    assert sizes == sorted([(east.pk, 2), (west.pk, 1)])


def test_a_pass_past_its_budget_leaves_the_rest_for_the_next(disk_rule, receiver, monkeypatch):
    monkeypatch.setattr(notify, "SEND_BUDGET", 0.0)
    hook = receiver()
    webhook(hook.url)
    east, west = NodeGroup.objects.create(name="east"), NodeGroup.objects.create(name="west")
    hot_node(group=east), hot_node(group=west)
    evaluate_alerts(at(0))
    assert notify.deliver(at(1)) == {"sent": 1, "retry": 0, "messages": 1}
    left = Notification.objects.get(status="pending")
    assert (left.attempts, left.claim, left.next_attempt_at) == (0, "", at(0))
    assert notify.deliver(at(2))["sent"] == 1
    assert len(hook.delivered()) == 2


def test_a_receiver_failing_twice_gets_the_notification_once_in_the_end(
    disk_rule, receiver, settings
):
    settings.MONITORING_NOTIFY_BACKOFF = 30
    hook = receiver(statuses=[500, 503])
    webhook(hook.url)
    hot_node()
    evaluate_alerts(at(0))
    assert notify.deliver(at(1))["retry"] == 1
    row = Notification.objects.get()
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 500)
    assert row.next_attempt_at == at(31)
    assert notify.deliver(at(20))["messages"] == 0  # backing off
    assert notify.deliver(at(31))["retry"] == 1
    assert Notification.objects.get().next_attempt_at == at(91)  # doubled
    assert notify.deliver(at(91))["sent"] == 1
    assert len(hook.delivered()) == 1 and len(hook.requests) == 3
    row = Notification.objects.get()
    assert (row.status, row.attempts, row.response_status) == ("sent", 3, 200)


def test_after_the_last_attempt_a_row_is_failed_and_listed_in_the_admin(
    disk_rule, receiver, settings, client
):
    settings.MONITORING_NOTIFY_BACKOFF = 0
    settings.MONITORING_NOTIFY_MAX_ATTEMPTS = 2
    hook = receiver(statuses=[500] * 5)
    webhook(hook.url)
    hot_node()
    evaluate_alerts(at(0))
    notify.deliver(at(1))
    notify.deliver(at(2))
    assert notify.deliver(at(3))["messages"] == 0
    row = Notification.objects.get()
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "HTTP 500")
    client.force_login(AdminFactory())
    page = client.get("/admin/monitoring/notification/?status__exact=failed")
    assert page.status_code == 200 and "HTTP 500" in page.content.decode()


def test_an_unreachable_receiver_is_retried(disk_rule, settings):
    settings.MONITORING_NOTIFY_BACKOFF = 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    webhook(f"http://127.0.0.1:{port}/hook")
    hot_node()
    evaluate_alerts(at(0))
    assert notify.deliver(at(1))["retry"] == 1
    row = Notification.objects.get()
    assert row.status == "pending" and row.response_status is None and row.last_error


def test_the_outbox_row_exists_iff_the_alert_change_committed(db):
    NotificationChannel.objects.create(name="ops", kind="email", emails=["ops@example.com"])
    with pytest.raises(RuntimeError), transaction.atomic():
        do_create_alert({"type": "other", "severity": "high", "message": "rolled back"})
        assert Notification.objects.count() == 1
        raise RuntimeError
    assert not Alert.objects.exists() and not Notification.objects.exists()
    alert = do_create_alert({"type": "other", "severity": "high", "message": "kept"})
    assert list(Notification.objects.values_list("alert_id", "event")) == [(alert.pk, "fired")]
    with pytest.raises(RuntimeError), transaction.atomic():
        do_resolve_alert(alert.pk)
        raise RuntimeError
    assert Notification.objects.count() == 1
    do_resolve_alert(alert.pk)
    assert sorted(Notification.objects.values_list("event", flat=True)) == ["fired", "resolved"]


def test_the_api_writes_outbox_rows_for_manual_alerts(db, api):
    NotificationChannel.objects.create(name="ops", kind="email", emails=["ops@example.com"])
    api.force_authenticate(AdminFactory())
    created = api.post("/api/alerts", {"type": "other", "message": "m"}, format="json")
    assert created.status_code == 201, created.content
    alert_id = created.json()["id"]
    assert api.put(f"/api/alerts/{alert_id}/resolve").status_code == 200
    assert sorted(
        Notification.objects.filter(alert_id=alert_id).values_list("event", flat=True)
    ) == ["fired", "resolved"]


def test_channels_take_only_alerts_of_their_group_or_customer(disk_rule, receiver):
    east, west = NodeGroup.objects.create(name="east"), NodeGroup.objects.create(name="west")
    customer = CustomerFactory()
    webhook(receiver().url, name="east", group=east)
    webhook(receiver().url, name="customer", customer=customer)
    webhook(receiver().url, name="all")
    hot_east, hot_west = hot_node(group=east), hot_node(group=west)
    evaluate_alerts(at(0))
    manual = do_create_alert({"type": "other", "message": "m", "customer_id": customer.pk})
    told = sorted(Notification.objects.values_list("channel__name", "alert_id"))
    east_alert = Alert.objects.get(node=hot_east).pk
    west_alert = Alert.objects.get(node=hot_west).pk
    assert told == sorted(
        [
            ("all", east_alert),
            ("all", west_alert),
            ("all", manual.pk),
            ("customer", manual.pk),
            ("east", east_alert),
        ]
    )


def test_repeat_interval_and_cap_per_alert(disk_rule, receiver):
    hook = receiver()
    webhook(hook.url, repeat_minutes=10, max_per_alert=3)
    node = hot_node()
    evaluate_alerts(at(0))
    notify.deliver(at(1))
    notify.deliver(at(5 * 60))  # not yet due again
    notify.deliver(at(10 * 60 + 1))
    notify.deliver(at(15 * 60))
    notify.deliver(at(20 * 60 + 1))
    notify.deliver(at(40 * 60))  # the cap (3) is reached
    events = [p["notifications"][0]["event"] for p in hook.delivered()]
    assert events == ["fired", "repeat", "repeat"]
    cool(node)
    evaluate_alerts(at(41 * 60))
    notify.deliver(at(41 * 60 + 1))
    assert len(hook.delivered()) == 3  # capped: not even the resolution


def test_a_resolved_alert_is_not_repeated(disk_rule, receiver):
    hook = receiver()
    webhook(hook.url, repeat_minutes=1)
    node = hot_node()
    evaluate_alerts(at(0))
    notify.deliver(at(1))
    cool(node)
    evaluate_alerts(at(10))
    notify.deliver(at(11))
    notify.deliver(at(600))
    assert [p["notifications"][0]["event"] for p in hook.delivered()] == ["fired", "resolved"]


def test_a_channel_with_bad_settings_is_refused(db):
    with pytest.raises(ValidationError) as error:
        NotificationChannel(name="a", kind="email", emails=["not an address"]).full_clean()
    assert "emails" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        NotificationChannel(name="b", kind="webhook", url="file:///etc/passwd").full_clean()
    assert "url" in error.value.message_dict


def test_the_admin_keeps_a_webhook_secret_it_does_not_show(db, client):
    client.force_login(AdminFactory())
    form = {
        "name": "hook",
        "kind": "webhook",
        "emails": "[]",
        "url": "https://example.com/hook",
        "secret": "first-secret",
        "repeat_minutes": 0,
        "max_per_alert": 10,
        "enabled": "on",
    }
    added = client.post("/admin/monitoring/notificationchannel/add/", form)
    assert added.status_code == 302, added.content.decode()[:2000]
    channel = NotificationChannel.objects.get()
    assert channel.secret == "first-secret"
    page = client.get(f"/admin/monitoring/notificationchannel/{channel.pk}/change/")
    assert "first-secret" not in page.content.decode()
    client.post(
        f"/admin/monitoring/notificationchannel/{channel.pk}/change/", {**form, "secret": ""}
    )
    assert NotificationChannel.objects.get().secret == "first-secret"


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row locks under concurrency: PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_delivery_passes_send_each_row_once(receiver):
    hook = receiver(delay=0.01)
    webhook(hook.url)
    for index in range(60):
        do_create_alert({"type": "other", "message": f"alert {index}"})
    start = threading.Barrier(2)
    errors = []

    def worker():
        try:
            start.wait()
            for _ in range(6):
                notify.deliver(limit=10)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sent = [item["id"] for p in hook.delivered() for item in p["notifications"]]
    assert len(sent) == len(set(sent)) == 60
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
