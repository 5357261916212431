"""Watching a reprovision run from a terminal (``manage.py reprovision``): each transition as
it is recorded (the run's ReprovisionEvent rows, polled), a summary every few minutes, and
the outcome as an exit code (0 clustered, 1 error or canceled, 2 timeout)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from portal.clusters.choices import RunStatus as R
from portal.clusters.models import ReprovisionEvent, ReprovisionRun

EXIT_CODES = {R.CLUSTERED: 0, R.ERROR: 1, R.CANCELED: 1, R.TIMEOUT: 2}
# A run still active this long past its deadline: the sweep (celery beat) is not running.
STALL_GRACE = timedelta(minutes=2)


def event_line(event: ReprovisionEvent) -> str:
    when = timezone.localtime(event.at).strftime("%H:%M:%S")
    who = event.node_run.cluster_node.node.name if event.node_run is not None else "run"
    move = f"{event.from_status} -> {event.status}" if event.from_status else event.status
    if event.from_status == event.status:
        move = event.status
    by = f" (by {event.by})" if event.by_id else ""
    return f"{when} {who}: {move}: {event.reason}{by}"


def summary_line(run: ReprovisionRun) -> str:
    counts = Counter(run.node_runs.values_list("status", flat=True))
    nodes = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    left = run.deadline - timezone.now()
    minutes = max(int(left.total_seconds() // 60), 0)
    return f"run {run.pk} {run.status}: {nodes}; {minutes} min to the run's deadline"


@dataclass
class Watcher:
    run_id: int
    write: Callable[[str], None]
    poll_seconds: float = 2.0
    progress_every: float = 300.0
    sleep: Callable[[float], None] | None = None  # None: time.sleep, looked up at each call
    clock: Callable[[], float] | None = None  # None: time.monotonic
    last_event: int = 0
    seen: list[int] = field(default_factory=list)

    def now(self) -> float:
        return (self.clock or time.monotonic)()

    def watch(self) -> int:
        """Print until the run ends; returns the exit code of its outcome."""
        next_summary = self.now() + self.progress_every
        while True:
            self.print_new_events()
            run = ReprovisionRun.objects.get(pk=self.run_id)
            if not run.is_active:
                self.write(f"run {run.pk} ended {run.status}: {run.reason}")
                return EXIT_CODES[R(run.status)]
            if timezone.now() > run.deadline + STALL_GRACE:
                self.write(
                    f"run {run.pk} is past its deadline but still {run.status}: is celery "
                    "beat running (core.expire_statuses)?"
                )
                return EXIT_CODES[R.TIMEOUT]
            if self.now() >= next_summary:
                self.write(summary_line(run))
                next_summary = self.now() + self.progress_every
            (self.sleep or time.sleep)(self.poll_seconds)

    def print_new_events(self) -> None:
        events = (
            ReprovisionEvent.objects.filter(run_id=self.run_id, pk__gt=self.last_event)
            .select_related("node_run__cluster_node__node", "by")
            .order_by("pk")
        )
        for event in events:
            self.write(event_line(event))
            self.last_event = event.pk
