"""The fleet's usage per hour (FleetUsageHour), from monitoring's 5-minute rollups.

An hour is summed up once the rollups have passed it (the latest rollup's bucket is in a
later hour): per metric one GROUP BY over the hour's rollups of fleet VMs (the rollups'
``bucket`` index), the bins and the sum of the averages. An hour with no rollups is stored
too (``buckets`` 0), so it is not looked at again. The beat task runs ``roll_up_hours``
every few minutes; the figures also sum up the few hours still missing when they are read
(``MAX_HOURS_ON_READ``), so they are right without the beat, only slower.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, IntegerField, Max, Min, QuerySet, Sum
from django.db.models.functions import Cast, Floor
from django.utils import timezone

from portal.fleet import histograms
from portal.fleet.models import VM, FleetUsageHour
from portal.monitoring.models import Rollup

HOUR = timedelta(hours=1)
WINDOW = timedelta(days=30)
BUCKET = timedelta(minutes=5)
MAX_HOURS_PER_RUN = 240
# Rollup columns of each metric's 5-minute average.
AVERAGE = {"cpu": "cpu_avg", "memory": "memory_avg", "disk": "disk_avg"}


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def vm_rollups(rows: QuerySet[Rollup], vms: QuerySet[VM] | None = None) -> QuerySet[Rollup]:
    """Rollups of fleet VMs (of ``vms`` when given): monitoring's rollups point at nodes,
    and a VM's id is its node's. Some VMs (``vms``) are named by id, so the database reads
    their rows through the (node, bucket) index instead of every VM's rows of the range."""
    if vms is None:
        return rows.filter(node_id__in=VM.objects.values("pk"))
    return rows.filter(node_id__in=list(vms.values_list("pk", flat=True)))


def summarize(rows: QuerySet[Rollup]) -> dict:
    """``rows``' bins, sums and counts per metric: one GROUP BY per metric plus one count
    (the database adds; Python only merges at most 101 rows per metric)."""
    totals = rows.aggregate(buckets=Count("id"), vms=Count("node_id", distinct=True))
    out: dict = {"buckets": totals["buckets"], "vms": totals["vms"]}
    for metric, column in AVERAGE.items():
        bins = histograms.empty()
        total = 0.0
        grouped = (
            rows.annotate(bin=Cast(Floor(F(column)), IntegerField()))
            .values("bin")
            .annotate(n=Count("id"), s=Sum(column))
            .order_by()
        )
        for row in grouped:
            bins[histograms.bin_of(row["bin"])] += row["n"]
            total += row["s"] or 0.0
        out[metric] = {"bins": bins, "sum": total}
    return out


def summarize_in_one_scan(rows: QuerySet[Rollup]) -> dict:
    """What ``summarize`` gives but the VMs count, from one scan: one GROUP BY over the three
    bins together (at most one row per combination that occurs), folded in Python. For a
    few VMs' rows over 30 days, read through the (node, bucket) index: their rows lie on
    as many heap pages as there are rows (monitoring writes bucket by bucket), so reading
    them once instead of four times is what counts."""
    bins = {metric: histograms.empty() for metric in AVERAGE}
    sums = dict.fromkeys(AVERAGE, 0.0)
    grouped = (
        rows.annotate(
            **{
                f"{metric}_bin": Cast(Floor(F(column)), IntegerField())
                for metric, column in AVERAGE.items()
            }
        )
        .values(*(f"{metric}_bin" for metric in AVERAGE))
        .annotate(
            n=Count("id"), **{f"{metric}_sum": Sum(column) for metric, column in AVERAGE.items()}
        )
        .order_by()
        .values_list(
            "n", *(f"{metric}_bin" for metric in AVERAGE), *(f"{metric}_sum" for metric in AVERAGE)
        )
    )
    buckets = 0
    for n, cpu, memory, disk, cpu_sum, memory_sum, disk_sum in grouped:
        buckets += n
        for metric, value, total in (
            ("cpu", cpu, cpu_sum),
            ("memory", memory, memory_sum),
            ("disk", disk, disk_sum),
        ):
            bins[metric][histograms.bin_of(value)] += n
            sums[metric] += total or 0.0
    out: dict = {"buckets": buckets, "vms": None}
    for metric in AVERAGE:
        out[metric] = {"bins": bins[metric], "sum": sums[metric]}
    return out


def roll_up_hour(hour: datetime, now: datetime | None = None) -> FleetUsageHour:
    """Sum up (again) the rollups of fleet VMs in ``hour`` (its start)."""
    summary = summarize(vm_rollups(Rollup.objects.filter(bucket__gte=hour, bucket__lt=hour + HOUR)))
    fields = {
        "vms": summary["vms"],
        "buckets": summary["buckets"],
        "computed_at": now or timezone.now(),
    }
    for metric in histograms.METRICS:
        fields[f"{metric}_sum"] = summary[metric]["sum"]
        fields[f"{metric}_bins"] = summary[metric]["bins"]
    row, _ = FleetUsageHour.objects.update_or_create(hour=hour, defaults=fields)
    return row


def due_hours(now: datetime) -> list[datetime]:
    """The hours of the last 30 days that the rollups have passed and that are not summed
    up yet, newest first."""
    span = Rollup.objects.filter(bucket__gte=hour_start(now - WINDOW)).aggregate(
        first=Min("bucket"), last=Max("bucket")
    )
    if span["first"] is None:
        return []
    # An hour is complete once a rollup of a later bucket exists (rollups are made in order).
    end = hour_start(span["last"] + BUCKET)
    hour = hour_start(span["first"])
    done = set(
        FleetUsageHour.objects.filter(hour__gte=hour, hour__lt=end).values_list("hour", flat=True)
    )
    due = []
    while hour < end:
        if hour not in done:
            due.append(hour)
        hour += HOUR
    return sorted(due, reverse=True)


def roll_up_hours(
    now: datetime | None = None, max_hours: int = MAX_HOURS_PER_RUN, prune: bool = True
) -> int:
    """Sum up the due hours, newest first, at most ``max_hours``; with ``prune``, drop the
    rows older than the window (the beat's run; a read leaves that to it). Returns the hours
    summed up."""
    now = now or timezone.now()
    hours = due_hours(now)[:max_hours]
    for hour in hours:
        with transaction.atomic():
            roll_up_hour(hour, now)
    if prune:
        FleetUsageHour.objects.filter(hour__lt=hour_start(now - WINDOW)).delete()
    return len(hours)
