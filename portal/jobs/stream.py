"""Server-Sent Events for a job: live, resumable with ``Last-Event-ID`` (the event counter)."""

import json
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from rest_framework.fields import DateTimeField

from portal.jobs.choices import TERMINAL
from portal.jobs.models import Job, JobEvent

FIELDS = ("counter", "event", "host", "task", "changed", "failed", "stdout", "created")
# ``created`` is written as the REST API writes it (DRF's DateTimeField, DATETIME_FORMAT).
_datetime = DateTimeField()


def _frame(event_id: int | None, kind: str, data: dict[str, Any]) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


def job_stream(job_id: int, after: int = 0) -> Iterator[str]:
    """Yield SSE frames until the job ended and every stored event was sent."""
    deadline = time.monotonic() + settings.JOB_STREAM_MAX_SECONDS
    last_keepalive = time.monotonic()
    yield "retry: 1000\n\n"
    while time.monotonic() < deadline:
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status is None:
            return  # the job was deleted: stop polling (a reconnect then gets a 404)
        events = list(
            JobEvent.objects.filter(job_id=job_id, counter__gt=after)
            .order_by("counter")
            .values(*FIELDS)[:500]
        )
        for event in events:
            after = event["counter"]
            event["created"] = _datetime.to_representation(event["created"])
            yield _frame(after, "job_event", event)
        if events:
            last_keepalive = time.monotonic()
            continue
        if status in TERMINAL:
            yield _frame(None, "end", {"status": status})
            return
        if time.monotonic() - last_keepalive > 15:
            yield ": keepalive\n\n"
            last_keepalive = time.monotonic()
        close_old_connections()
        time.sleep(settings.JOB_STREAM_POLL_SECONDS)
