"""Writes of monitoring: the agent's install/token rotation, the liveness evaluator, rollups
and pruning. The heartbeat itself is in heartbeat.py (a hot path: one UPDATE, one INSERT)."""

import logging
import re
import secrets
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Min
from django.utils import timezone

from portal.accounts.actions import hash_token
from portal.core.errors import Conflict, PortalError
from portal.jobs import actions as jobs
from portal.jobs import registry
from portal.jobs.choices import ACTIVE, JobStatus
from portal.jobs.models import Job
from portal.monitoring.choices import WATCHED, Liveness
from portal.monitoring.models import NodeLiveness, Rollup, Sample
from portal.nodes.models import Node

logger = logging.getLogger(__name__)

INSTALL_AGENT = "monitoring.install_agent"
AGENT_PLAYBOOK = "node_agent.yml"
BUCKET = timedelta(minutes=5)
# A bucket is rolled up once it ended this long ago (heartbeats stamped in it have committed).
ROLLUP_LAG = timedelta(seconds=30)
ROLLUP_MAX_BUCKETS = 288  # one day of buckets per task run; the next run continues
# The filesystem the agent reports: an absolute path of plain characters (it goes into the
# agent's configuration through an extra variable, so nothing Ansible would template).
DISK_PATH = re.compile(r"^/[A-Za-z0-9._/-]{0,254}$")


def register_job_actions() -> None:
    registry.register(
        registry.ActionSpec(
            name=INSTALL_AGENT,
            playbook=AGENT_PLAYBOOK,
            sensitive_vars=("node_agent_token",),
            on_finish=apply_install_result,
            description="Install the monitoring agent on a node (a rerun rotates its token)",
        )
    )


# --- the agent: install and token rotation ------------------------------------------------


def portal_url() -> str:
    return (settings.MONITORING_PORTAL_URL or settings.PORTAL_URL).rstrip("/")


def check_install_agent(node: Node, interval: int | None, disk_path: str | None = None) -> int:
    interval = settings.MONITORING_HEARTBEAT_INTERVAL if interval is None else interval
    if isinstance(interval, bool) or not isinstance(interval, int) or not 5 <= interval <= 3600:
        raise PortalError(
            "The heartbeat interval is a whole number of seconds, 5-3600.", field="interval_seconds"
        )
    if disk_path is not None and not (isinstance(disk_path, str) and DISK_PATH.match(disk_path)):
        raise PortalError(
            "An absolute path of letters, digits and . _ - /, e.g. /srv.", field="disk_path"
        )
    if not portal_url():
        raise PortalError(
            "The agents need the portal's address: set MONITORING_PORTAL_URL (or PORTAL_URL).",
            field="portal_url",
            code="no_portal_url",
        )
    running = (
        Job.objects.filter(action=INSTALL_AGENT, target_id=str(node.pk), status__in=ACTIVE)
        .values_list("pk", flat=True)
        .first()
    )
    if running:
        raise Conflict(
            f"An agent install for {node.name} is already under way (job "
            f"{running}); wait for it to finish.",
            field="node",
        )
    return interval


@transaction.atomic
def do_install_agent(
    node: Node, *, interval: int | None = None, disk_path: str | None = None, by=None
) -> Job:
    """Issue a new agent token (its hash stored as the pending one) and launch the role that
    installs the agent with it. The clear token goes to the job as a sensitive variable
    (stored encrypted, masked in events) and is never kept here. ``disk_path``: the
    filesystem the agent reports (the role's default, /, when not given)."""
    NodeLiveness.objects.get_or_create(node=node)
    # Locked before the check, so two installs of one node cannot both pass it.
    liveness = NodeLiveness.objects.select_for_update().get(node=node)
    interval = check_install_agent(node, interval, disk_path)
    token = secrets.token_urlsafe(32)
    liveness.next_token_hash = hash_token(token)
    liveness.token_issued_at = timezone.now()
    liveness.save(update_fields=["next_token_hash", "token_issued_at"])
    return jobs.launch(
        playbook=AGENT_PLAYBOOK,
        action=INSTALL_AGENT,
        nodes=[node],
        extra_vars={
            "node_agent_portal_url": portal_url(),
            "node_agent_node_id": node.pk,
            "node_agent_interval": interval,
            **({"node_agent_disk_path": disk_path} if disk_path is not None else {}),
        },
        secret_vars={"node_agent_token": token},
        target=node,
        requested_by=by,
    )


def apply_install_result(job: Job) -> None:
    """The job's result handler: on success the node holds the pending token, so it is the
    only one from now on; a node that has never beaten is due one interval + grace from now.
    On failure both tokens stay valid (the node may hold either)."""
    if job.status != JobStatus.SUCCESSFUL or not job.target_id:
        return
    now = timezone.now()
    interval = int(
        job.extra_vars.get("node_agent_interval") or settings.MONITORING_HEARTBEAT_INTERVAL
    )
    with transaction.atomic():
        liveness = (
            NodeLiveness.objects.select_for_update().filter(node_id=int(job.target_id)).first()
        )
        if liveness is None:
            return
        if liveness.next_token_hash:
            liveness.token_hash, liveness.next_token_hash = liveness.next_token_hash, ""
        if liveness.status == Liveness.UNKNOWN and liveness.next_due_at is None:
            liveness.next_due_at = now + timedelta(
                seconds=interval + settings.MONITORING_GRACE_SECONDS
            )
        liveness.save(update_fields=["token_hash", "next_token_hash", "next_due_at"])


# --- liveness -----------------------------------------------------------------------------


def sources(to: str) -> set[str]:
    """The statuses NodeLiveness.TRANSITIONS lets move to ``to``."""
    return {str(source) for source, targets in NodeLiveness.TRANSITIONS.items() if to in targets}


def _move(to: str, from_states, column: str, now: datetime, clear_due: bool) -> list[int]:
    """One guarded UPDATE: rows still in ``from_states`` whose ``column`` time has passed.
    Under concurrency each row moves once: a competing UPDATE waits for the row lock, then
    re-reads the WHERE clause and skips it. Returns the node ids this call moved.

    Only moves NodeLiveness.TRANSITIONS declares (the status base's table, which
    ``manage.py check`` validates); the status_changed_at stamp is the base's
    STATUS_CHANGED_AT_FIELD."""
    undeclared = set(from_states) - sources(to)
    if undeclared:
        raise ValueError(f"NodeLiveness declares no move {sorted(undeclared)} -> {to}")
    table = NodeLiveness._meta.db_table
    states = sorted(from_states)
    marks = ", ".join(["%s"] * len(states))
    at = connection.ops.adapt_datetimefield_value(now)
    clear = ", next_due_at = NULL, late_at = NULL" if clear_due else ""
    sql = (
        f"UPDATE {table} SET status = %s, status_changed_at = %s{clear} "  # noqa: S608
        f"WHERE status IN ({marks}) AND {column} <= %s RETURNING node_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [to, at, *states, at])
        return [row[0] for row in cursor.fetchall()]


def evaluate_liveness(now: datetime | None = None) -> dict[str, list[int]]:
    """Move overdue nodes: to ``down`` once next_due_at has passed (from unknown, up or
    late), then up nodes to ``late`` once late_at has passed. A heartbeat moves a node back
    to ``up`` by itself. Safe to run from several beat processes at once.

    The moves are those NodeLiveness declares on the status base (portal/core/status.py),
    applied in bulk: the base's move() is one row per UPDATE, and this pass must handle
    every due node of 100k in one statement per move. No history row is written yet (the
    alerts of #14 will record what a move means)."""
    now = now or timezone.now()
    with transaction.atomic():
        down = _move(Liveness.DOWN, WATCHED, "next_due_at", now, clear_due=True)
        late = _move(Liveness.LATE, {Liveness.UP}, "late_at", now, clear_due=False)
    if down:
        logger.info("nodes down: %s", down)
    return {"down": down, "late": late}


# --- history: rollups and pruning ---------------------------------------------------------


def bucket_start(moment: datetime) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % BUCKET


def _next_bucket(now: datetime) -> datetime | None:
    last = Rollup.objects.aggregate(last=Max("bucket"))["last"]
    start = last + BUCKET if last else None
    first = Sample.objects.filter(**({"at__gte": start} if start else {})).aggregate(
        first=Min("at")
    )["first"]
    if first is None:
        return None
    return bucket_start(first)


def rollup_bucket(start: datetime) -> int:
    """Aggregate every node's samples in [start, start + 5 min) into rollups (one query,
    one INSERT; a bucket already rolled up by a competing run is left as it is)."""
    rows = (
        Sample.objects.filter(at__gte=start, at__lt=start + BUCKET)
        .values("node_id")
        .annotate(
            n=Count("id"),
            cpu_min=Min("cpu_percent"),
            cpu_avg=Avg("cpu_percent"),
            cpu_max=Max("cpu_percent"),
            memory_min=Min("memory_percent"),
            memory_avg=Avg("memory_percent"),
            memory_max=Max("memory_percent"),
            disk_min=Min("disk_percent"),
            disk_avg=Avg("disk_percent"),
            disk_max=Max("disk_percent"),
            disk_used_gb_max=Max("disk_used_gb"),
            load1_min=Min("load1"),
            load1_avg=Avg("load1"),
            load1_max=Max("load1"),
        )
        .order_by()
    )
    gauges = _gauge_averages(start)
    rollups = []
    for row in rows:
        node_id = row.pop("node_id")
        rollup = Rollup(node_id=node_id, bucket=start, samples=row.pop("n"), **row)
        rollup.gauges = gauges.get(node_id)
        rollups.append(rollup)
    Rollup.objects.bulk_create(rollups, batch_size=1000, ignore_conflicts=True)
    return len(rollups)


def _gauge_averages(start: datetime) -> dict[int, dict[str, float]]:
    """Per node, the average of each extra gauge over the bucket's samples that carried it
    (in Python: the gauges are JSON, and only the nodes that send some have any)."""
    sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    rows = Sample.objects.filter(at__gte=start, at__lt=start + BUCKET).exclude(gauges=None)
    for node_id, gauges in rows.values_list("node_id", "gauges").iterator(chunk_size=5000):
        for name, value in (gauges or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total = sums[node_id][name]
                total[0] += value
                total[1] += 1
    return {
        node_id: {name: total / n for name, (total, n) in named.items()}
        for node_id, named in sums.items()
    }


def rollup(now: datetime | None = None, max_buckets: int = ROLLUP_MAX_BUCKETS) -> int:
    """Roll up every complete bucket after the last rolled-up one. Returns buckets done."""
    now = now or timezone.now()
    done = 0
    start = _next_bucket(now)
    while start is not None and start + BUCKET + ROLLUP_LAG <= now and done < max_buckets:
        with transaction.atomic():
            rollup_bucket(start)
        done += 1
        following = start + BUCKET
        start = (
            following
            if Sample.objects.filter(at__gte=following, at__lt=following + BUCKET).exists()
            else _next_bucket(now)
        )
    return done


def _prune(model, column: str, cutoff: datetime, batch: int, max_batches: int) -> int:
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            model.objects.filter(**{f"{column}__lt": cutoff})
            .order_by(column)
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            break
        model.objects.filter(id__in=ids).delete()  # no cascades: one DELETE per batch
        deleted += len(ids)
        if len(ids) < batch:
            break
    return deleted


def prune(now: datetime | None = None) -> dict[str, int]:
    """Delete raw samples past MONITORING_RAW_RETENTION_HOURS (never one not yet rolled up)
    and rollups past MONITORING_ROLLUP_RETENTION_DAYS, in batches of MONITORING_PRUNE_BATCH."""
    now = now or timezone.now()
    batch, batches = settings.MONITORING_PRUNE_BATCH, settings.MONITORING_PRUNE_MAX_BATCHES
    raw_cutoff = now - timedelta(hours=settings.MONITORING_RAW_RETENTION_HOURS)
    last = Rollup.objects.aggregate(last=Max("bucket"))["last"]
    rolled_up_to = last + BUCKET if last else None
    if rolled_up_to is None or rolled_up_to < raw_cutoff:
        pending = _next_bucket(now)
        raw_cutoff = min(raw_cutoff, pending) if pending else raw_cutoff
    rollup_cutoff = now - timedelta(days=settings.MONITORING_ROLLUP_RETENTION_DAYS)
    return {
        "samples": _prune(Sample, "at", raw_cutoff, batch, batches),
        "rollups": _prune(Rollup, "bucket", rollup_cutoff, batch, batches),
    }
