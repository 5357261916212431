"""Alert notifications from an outbox (README, "Monitoring", notifications).

Writing: ``enqueue`` is called in the transaction that raises or resolves alerts (the
evaluator's batch, a manual alert's create/resolve), so a Notification row exists if and
only if the alert change committed. Rows are unique per (channel, alert, event, number):
writing one twice is a no-op.

Delivering: ``deliver`` (a beat task) first writes the repeats that are due, then claims the
due rows (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, and a guarded UPDATE that stamps
a claim token everywhere), so two workers never send the same row; the claimed rows go out
one message per (channel, customer, node group); a message that fails puts its rows back
with a backoff until MONITORING_NOTIFY_MAX_ATTEMPTS, then marks them failed. A worker that
dies mid-send leaves its rows ``sending``; they are claimed again after
MONITORING_NOTIFY_LEASE seconds (so a crash between the send and the mark may send twice;
nothing is ever lost).
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from portal.monitoring.choices import ChannelKind, NotificationEvent, NotificationStatus
from portal.monitoring.models import Alert, Notification, NotificationChannel

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Portal-Timestamp"
SIGNATURE_HEADER = "X-Portal-Signature"
# The number of a (channel, alert)'s row per event: fired 1, repeats 2, 3, …, resolved 0.
NUMBER = {NotificationEvent.FIRED: 1, NotificationEvent.RESOLVED: 0}
SMTP_OK = 250  # what the server answered to DATA when Django's backend raised nothing
# A pass starts no new message after this many seconds: its unsent rows go back to pending
# (the attempt not counted), well before the task's time limit (300 s) or the lease could
# let another worker take rows this one is still sending.
SEND_BUDGET = 100.0


# --- the signature ------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + HMAC-SHA256(secret, timestamp + "." + body), hex."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, tolerance: int = 300) -> bool:
    """What a receiver does (README): the signature matches and the timestamp is recent."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


# --- writing the outbox -------------------------------------------------------------------


def _applies(channel: NotificationChannel, group_id: int | None, customer_id: int | None) -> bool:
    return (not channel.group_id or channel.group_id == group_id) and (
        not channel.customer_id or channel.customer_id == customer_id
    )


def _counts(alert_ids: list[int]) -> dict[tuple[int, int], int]:
    rows = (
        Notification.objects.filter(alert_id__in=alert_ids)
        .values_list("channel_id", "alert_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(channel_id, alert_id): n for channel_id, alert_id, n in rows}


def enqueue(alerts: QuerySet[Alert], event: str, now: datetime | None = None) -> int:
    """Write the outbox rows of ``event`` for these alerts, one per channel whose scope takes
    the alert and whose cap is not reached; a resolution goes only to the channels that were
    told of the alert. Call it inside the alert change's transaction. Returns rows written."""
    channels = list(NotificationChannel.objects.filter(enabled=True))
    if not channels:
        return 0
    now = now or timezone.now()
    rows = list(
        alerts.order_by("pk").values_list(
            "pk", Coalesce("node__group_id", "group_id"), "customer_id"
        )
    )
    if not rows:
        return 0
    counts = _counts([pk for pk, _, _ in rows])
    out = []
    for pk, group_id, customer_id in rows:
        for channel in channels:
            told = counts.get((channel.pk, pk), 0)
            if not _applies(channel, group_id, customer_id):
                continue
            if event == NotificationEvent.RESOLVED and not told:
                continue
            if channel.max_per_alert and told >= channel.max_per_alert:
                continue
            out.append(
                Notification(
                    channel=channel,
                    alert_id=pk,
                    event=event,
                    number=NUMBER[NotificationEvent(event)],
                    created_at=now,
                    next_attempt_at=now,
                )
            )
    Notification.objects.bulk_create(out, batch_size=1000, ignore_conflicts=True)
    return len(out)


def enqueue_repeats(now: datetime) -> int:
    """A repeat for every open alert a channel with a repeat interval was last told of at
    least that interval ago, under the channel's cap."""
    written = 0
    for channel in NotificationChannel.objects.filter(enabled=True, repeat_minutes__gt=0):
        due = now - timedelta(minutes=channel.repeat_minutes)
        told = (
            Notification.objects.filter(channel=channel, alert__resolved=False)
            .values_list("alert_id")
            .annotate(last=Max("created_at"), n=Count("pk"), top=Max("number"))
            .filter(last__lte=due)
            .order_by()
        )
        if channel.max_per_alert:
            told = told.filter(n__lt=channel.max_per_alert)
        out = [
            Notification(
                channel=channel,
                alert_id=alert_id,
                event=NotificationEvent.REPEAT,
                number=top + 1,
                created_at=now,
                next_attempt_at=now,
            )
            for alert_id, _last, _n, top in told
        ]
        Notification.objects.bulk_create(out, ignore_conflicts=True)
        written += len(out)
    return written


# --- delivering ---------------------------------------------------------------------------


def _due(now: datetime) -> Q:
    lease = now - timedelta(seconds=settings.MONITORING_NOTIFY_LEASE)
    return Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=NotificationStatus.SENDING, claimed_at__lt=lease
    )


def claim(now: datetime, limit: int) -> tuple[str, list[Notification]]:
    """Take up to ``limit`` due rows for this worker: (claim token, the rows)."""
    token = secrets.token_hex(16)
    with transaction.atomic():
        due = Notification.objects.filter(_due(now)).order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return token, []
        # Guarded: a row another worker claimed meanwhile no longer matches _due.
        Notification.objects.filter(_due(now), pk__in=ids).update(
            status=NotificationStatus.SENDING,
            claim=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
        )
    rows = Notification.objects.filter(claim=token, status=NotificationStatus.SENDING)
    return token, list(rows.select_related("channel", "alert", "alert__node").order_by("pk"))


def _payload(channel: NotificationChannel, rows: list[Notification]) -> dict[str, Any]:
    first = rows[0].alert
    return {
        "channel": channel.name,
        "customer_id": first.customer_id,
        "node_group_id": first.group_of,
        "notifications": [
            {
                "id": row.pk,
                "event": row.event,
                "alert": {
                    "id": row.alert.pk,
                    "type": row.alert.type,
                    "severity": row.alert.severity,
                    "message": row.alert.message,
                    "node_id": row.alert.node_id,
                    "node": row.alert.node.name if row.alert.node else None,
                    "customer_id": row.alert.customer_id,
                    "group_id": row.alert.group_id,
                    "created_at": row.alert.created_at.isoformat(),
                    "resolved": row.alert.resolved,
                    "resolved_at": (
                        row.alert.resolved_at.isoformat() if row.alert.resolved_at else None
                    ),
                },
            }
            for row in rows
        ],
    }


class DeliveryError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def send_webhook(channel: NotificationChannel, payload: dict[str, Any]) -> int:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - the admin's http(s) URL (channel_errors)
        channel.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "portal-notifications",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(channel.secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.MONITORING_NOTIFY_TIMEOUT
        ) as response:
            return response.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code}", status=error.code) from None
    except (OSError, ValueError) as error:
        raise DeliveryError(f"{type(error).__name__}: {error}") from None


def send_email(channel: NotificationChannel, payload: dict[str, Any]) -> int:
    items = payload["notifications"]
    worst = items[0]["alert"]
    subject = (
        f"[portal] {worst['severity']}: {worst['message']}"
        if len(items) == 1
        else f"[portal] {len(items)} alert notifications"
    )
    lines = [
        f"{item['event']}: {item['alert']['severity']} {item['alert']['type']} "
        f"#{item['alert']['id']}: {item['alert']['message']}"
        for item in items
    ]
    try:
        EmailMessage(
            subject[:200], "\n".join(lines) + "\n", settings.DEFAULT_FROM_EMAIL, channel.emails
        ).send()
    except Exception as error:  # smtplib's and the socket's errors, all retried
        raise DeliveryError(f"{type(error).__name__}: {error}") from None
    return SMTP_OK


SENDERS = {ChannelKind.EMAIL: send_email, ChannelKind.WEBHOOK: send_webhook}


def _finish(token: str, rows: list[Notification], now: datetime, status: int | None, error: str):
    mine = Notification.objects.filter(claim=token, pk__in=[row.pk for row in rows])
    if not error:
        mine.update(
            status=NotificationStatus.SENT, sent_at=now, response_status=status, last_error=""
        )
        return
    attempts = settings.MONITORING_NOTIFY_MAX_ATTEMPTS
    mine.filter(attempts__gte=attempts).update(
        status=NotificationStatus.FAILED, response_status=status, last_error=error
    )
    backoff = settings.MONITORING_NOTIFY_BACKOFF
    for row in rows:
        delay = min(backoff * 2 ** max(row.attempts - 1, 0), 3600)
        mine.filter(pk=row.pk, attempts__lt=attempts).update(
            status=NotificationStatus.PENDING,
            next_attempt_at=now + timedelta(seconds=delay),
            response_status=status,
            last_error=error,
        )


def _release(token: str, rows: list[Notification]) -> None:
    """Rows claimed but not sent in this pass: pending again, the attempt not counted."""
    Notification.objects.filter(claim=token, pk__in=[row.pk for row in rows]).update(
        status=NotificationStatus.PENDING, claim="", claimed_at=None, attempts=F("attempts") - 1
    )


def deliver(now: datetime | None = None, limit: int | None = None) -> dict[str, int]:
    """One delivery pass: repeats, claim, send grouped, mark. Returns counts of rows."""
    now = now or timezone.now()
    with transaction.atomic():
        enqueue_repeats(now)
    token, rows = claim(now, limit or settings.MONITORING_NOTIFY_BATCH)
    groups: dict[tuple, list[Notification]] = defaultdict(list)
    for row in rows:
        groups[(row.channel_id, row.alert.customer_id, row.alert.group_of)].append(row)
    totals = {"sent": 0, "retry": 0, "messages": 0}
    started = time.monotonic()
    budget = min(SEND_BUDGET, settings.MONITORING_NOTIFY_LEASE / 3)
    for batch in groups.values():
        if totals["messages"] and time.monotonic() - started > budget:
            _release(token, batch)
            continue
        channel = batch[0].channel
        totals["messages"] += 1
        try:
            status = SENDERS[ChannelKind(channel.kind)](channel, _payload(channel, batch))
        except DeliveryError as error:
            logger.warning("notification to %s failed: %s", channel.name, error)
            _finish(token, batch, now, error.status, str(error)[:1000])
            totals["retry"] += len(batch)
        else:
            _finish(token, batch, now, status, "")
            totals["sent"] += len(batch)
    return totals
