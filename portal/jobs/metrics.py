"""Prometheus metrics for jobs, read from the database at scrape time.

Every figure comes from PostgreSQL (the one source of truth), so any number of web processes
give the same answer and nothing is lost when a worker restarts.
"""

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Q
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job

DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LAG_WINDOW = 200  # recent finished jobs that the event-lag figures cover


class JobCollector:
    def collect(self) -> Iterator[Metric]:
        yield self._by_status()
        yield self._durations()
        yield self._queue_depth()
        yield from self._event_lag()

    def _by_status(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "portal_jobs", "Jobs by status and playbook", labels=["status", "playbook"]
        )
        rows = Job.objects.values("status", "playbook").annotate(n=Count("id")).order_by()
        for row in rows:
            family.add_metric([row["status"], row["playbook"]], row["n"])
        return family

    def _durations(self) -> HistogramMetricFamily:
        duration = ExpressionWrapper(
            F("finished_at") - F("started_at"), output_field=DurationField()
        )
        finished = Job.objects.filter(started_at__isnull=False, finished_at__isnull=False)
        counts = finished.annotate(d=duration).aggregate(
            total=Count("id"),
            seconds=Avg("d"),
            **{
                f"le_{b}": Count("id", filter=Q(d__lte=timedelta(seconds=b)))
                for b in DURATION_BUCKETS
            },
        )
        buckets = [(str(b), counts[f"le_{b}"]) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", counts["total"]))
        average = counts["seconds"].total_seconds() if counts["seconds"] else 0.0
        family = HistogramMetricFamily(
            "portal_job_duration_seconds", "Run time of finished jobs (started to finished)"
        )
        family.add_metric([], buckets, sum_value=average * counts["total"])
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
