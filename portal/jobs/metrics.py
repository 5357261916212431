"""Prometheus metrics for jobs, read from the database at scrape time.

Every figure comes from PostgreSQL (the one source of truth), so any number of web processes
give the same answer and nothing is lost when a worker restarts. A scrape costs the same
whatever the size of the history: ended jobs come from the tally their terminal moves keep
(portal/jobs/tally.py, a few rows), active jobs are counted live through the status index,
and the event-lag window reads the newest rows of the index on ``finished_at``.
"""

from collections import Counter
from collections.abc import Iterator

from django.db.models import Avg, Count, Max
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from portal.jobs.choices import ACTIVE, JobStatus
from portal.jobs.models import Job, JobTally
from portal.jobs.tally import DURATION_BUCKETS, NOT_RUN

LAG_WINDOW = 200  # recent finished jobs that the event-lag figures cover


class JobCollector:
    def collect(self) -> Iterator[Metric]:
        tally = list(
            JobTally.objects.values_list("status", "playbook", "le_seconds", "count", "seconds")
        )
        yield self._by_status(tally)
        yield self._durations(tally)
        yield self._queue_depth()
        yield from self._event_lag()

    def _by_status(self, tally: list[tuple]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "portal_jobs",
            "Jobs by status and playbook: active statuses (pending, dispatched, running) as "
            "they are now; ended statuses counted since the tally began, including jobs "
            "retention has since deleted (they only grow)",
            labels=["status", "playbook"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for status, playbook, _, count, _ in tally:
            counts[(status, playbook)] += count
        active = Job.objects.filter(status__in=ACTIVE).values("status", "playbook")
        for row in active.annotate(n=Count("id")).order_by():
            counts[(row["status"], row["playbook"])] += row["n"]
        for (status, playbook), count in sorted(counts.items()):
            family.add_metric([status, playbook], count)
        return family

    def _durations(self, tally: list[tuple]) -> HistogramMetricFamily:
        ran = [(le, count, seconds) for _, _, le, count, seconds in tally if le != NOT_RUN]
        buckets = [
            (str(b), sum(count for le, count, _ in ran if le <= b)) for b in DURATION_BUCKETS
        ]
        buckets.append(("+Inf", sum(count for _, count, _ in ran)))
        family = HistogramMetricFamily(
            "portal_job_duration_seconds",
            "Run time of ended jobs that ran (started to finished), since the tally began "
            "(jobs deleted by retention included)",
        )
        family.add_metric([], buckets, sum_value=sum(seconds for _, _, seconds in ran))
        return family

    def _queue_depth(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "portal_job_queue_depth",
            "Jobs waiting for a worker (pending or dispatched)",
            labels=["queue"],
        )
        waiting = Job.objects.filter(status__in=[JobStatus.PENDING, JobStatus.DISPATCHED])
        for row in waiting.values("queue").annotate(n=Count("id")).order_by():
            family.add_metric([row["queue"]], row["n"])
        return family

    def _event_lag(self) -> Iterator[GaugeMetricFamily]:
        # The newest LAG_WINDOW rows of the finished_at index (a backward index scan).
        recent = Job.objects.filter(event_lag_p95_ms__isnull=False).order_by("-finished_at")
        ids = list(recent.values_list("id", flat=True)[:LAG_WINDOW])
        figures = Job.objects.filter(id__in=ids).aggregate(
            worst=Max("event_lag_p95_ms"), mean=Avg("event_lag_p95_ms")
        )
        worst = GaugeMetricFamily(
            "portal_job_event_lag_p95_seconds_max",
            "Worst per-job p95 of event created -> stored, recent jobs",
        )
        worst.add_metric([], (figures["worst"] or 0) / 1000)
        mean = GaugeMetricFamily(
            "portal_job_event_lag_p95_seconds_mean",
            "Mean per-job p95 of event created -> stored, recent jobs",
        )
        mean.add_metric([], (figures["mean"] or 0) / 1000)
        yield worst
        yield mean
