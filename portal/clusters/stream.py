"""Server-Sent Events for a reprovision run: every node's transitions as they are recorded
(the history rows, ``ReprovisionEvent``), resumable with ``Last-Event-ID`` (the row's id),
then one ``end`` frame once the run is no longer requested or running."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from rest_framework.fields import DateTimeField

from portal.clusters.models import RUN_ACTIVE, ReprovisionEvent, ReprovisionRun

_datetime = DateTimeField()
BATCH = 200
KEEPALIVE_SECONDS = 15


def _frame(event_id: int | None, kind: str, data: dict[str, Any]) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


def transitions_after(run_id: int, after: int) -> list[dict[str, Any]]:
    rows = (
        ReprovisionEvent.objects.filter(run_id=run_id, pk__gt=after)
        .order_by("pk")
        .values(
            "pk",
            "at",
            "from_status",
            "status",
            "reason",
            "job_id",
            "node_run_id",
            "node_run__cluster_node__node__name",
            "by__username",
        )[:BATCH]
    )
    return [
        {
            "id": row["pk"],
            "at": _datetime.to_representation(row["at"]),
            "node_run": row["node_run_id"],
            "node": row["node_run__cluster_node__node__name"] or "",
            "from_status": row["from_status"],
            "status": row["status"],
            "reason": row["reason"],
            "job": row["job_id"],
            "by": row["by__username"] or "",
        }
        for row in rows
    ]


def run_stream(run_id: int, after: int = 0) -> Iterator[str]:
    """Yield SSE frames until the run settled and every recorded transition was sent."""
    deadline = time.monotonic() + settings.JOB_STREAM_MAX_SECONDS
    last_sent = time.monotonic()
    yield "retry: 2000\n\n"
    while time.monotonic() < deadline:
        status = ReprovisionRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status is None:
            return
        rows = transitions_after(run_id, after)
        for row in rows:
            after = row["id"]
            yield _frame(after, "transition", row)
        if rows:
            last_sent = time.monotonic()
            continue
        if status not in RUN_ACTIVE:
            yield _frame(None, "end", {"status": status})
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        close_old_connections()
        time.sleep(settings.JOB_STREAM_POLL_SECONDS)
