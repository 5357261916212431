"""Agent-less nodes (the old collector's pull mode): probed in ONE batched playbook run.

Every MONITORING_PROBE_INTERVAL seconds the beat task ``monitoring.probe_nodes`` calls
:func:`do_probe`: one job of ``playbooks/node_probe.yml`` over every enabled node that has
never sent a heartbeat (no agent, or an agent not yet heard from), never one run per node,
and none while the previous probe job is still active. JOB_FORKS hosts run at a time.

The job's result handler :func:`apply_probe_result` treats each reachable host's report as a
heartbeat: the same validation (heartbeat.validate), a row in the same samples table, and the
same liveness update (``up``, last values, ``late_at``/``next_due_at`` from the probe
interval). It never overwrites a node whose agent has beaten meanwhile (the update is
guarded by ``last_seq = 0``). An unreachable (or failed) host gets no sample; its due time
stays, so the liveness evaluator takes it down then; a node never seen up is due at once.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from portal.jobs import actions as jobs
from portal.jobs import registry
from portal.jobs.choices import ACTIVE
from portal.jobs.models import Job
from portal.jobs.selectors import stats_data
from portal.monitoring.choices import WATCHED, Liveness
from portal.monitoring.heartbeat import Invalid, validate
from portal.monitoring.models import NodeLiveness, Sample
from portal.nodes.choices import Connection
from portal.nodes.models import Node

logger = logging.getLogger(__name__)

PROBE = "monitoring.probe"
PROBE_PLAYBOOK = "node_probe.yml"
RESULTS = "node_probe_results"
REPORTED = ("cpu_percent", "memory_percent", "disk_percent", "disk_used_gb")
OPTIONAL = ("uptime_seconds", "load")
LOCK_KEY = 0x6D6F6E70  # "monp": the PostgreSQL advisory lock of the probe launch


def register_job_actions() -> None:
    registry.register(
        registry.ActionSpec(
            name=PROBE,
            playbook=PROBE_PLAYBOOK,
            on_finish=apply_probe_result,
            description="Probe the nodes without a monitoring agent (one batched run)",
        )
    )


# --- launching ----------------------------------------------------------------------------


def agentless_nodes():
    """Enabled nodes that can be reached (local, or SSH with a credential) and have never
    sent a heartbeat: no liveness row, or one with ``last_seq = 0``."""
    return (
        Node.objects.filter(enabled=True)
        .filter(Q(connection=Connection.LOCAL) | Q(credential__isnull=False))
        .filter(Q(liveness__isnull=True) | Q(liveness__last_seq=0))
        .order_by("pk")
    )


def active_probe() -> int | None:
    return (
        Job.objects.filter(action=PROBE, status__in=ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def _lock_launch() -> None:
    """Two beat processes firing at once launch one probe: on PostgreSQL a transaction-level
    advisory lock orders them (the second then sees the first's job); SQLite serialises
    writers by itself."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def probe_timeout() -> int:
    return max(300, 5 * settings.MONITORING_PROBE_INTERVAL)


@transaction.atomic
def do_probe(by=None) -> Job | None:
    """Launch one probe job over every agent-less node; None when there is none or the
    previous probe job is still active."""
    _lock_launch()
    running = active_probe()
    if running:
        logger.info("probe skipped: job %s still active", running)
        return None
    nodes = list(
        agentless_nodes().select_related("group", "credential").defer("credential__secret")
    )
    if not nodes:
        return None
    return jobs.launch(
        playbook=PROBE_PLAYBOOK,
        action=PROBE,
        nodes=nodes,
        nodes_loaded=True,
        timeout=probe_timeout(),
        requested_by=by,
    )


# --- the result ---------------------------------------------------------------------------


def reports(job: Job) -> dict[str, Any]:
    results = stats_data(job).get(RESULTS)
    return results if isinstance(results, dict) else {}


def check_report(report: Any) -> dict:
    """A host's report as a heartbeat's values (heartbeat.validate; Invalid if bad)."""
    if not isinstance(report, dict):
        raise Invalid([(None, "The report is not an object.", "not_an_object")])
    body = {name: report[name] for name in (*REPORTED, *OPTIONAL) if name in report}
    values = validate(body)  # a probe has no sequence
    values.pop("seq")
    return values


def record(node_id: int, values: dict, now: datetime) -> bool:
    """One probed node's values: the liveness update and the sample, as a heartbeat's.
    False (nothing stored) when the node's agent has beaten meanwhile."""
    interval = settings.MONITORING_PROBE_INTERVAL
    load = values.get("load")
    load1 = load[0] if load else None
    with transaction.atomic():
        updated = NodeLiveness.objects.filter(node_id=node_id, last_seq=0).update(
            status=Liveness.UP,
            status_changed_at=Case(
                When(status=Liveness.UP, then=F("status_changed_at")), default=Value(now)
            ),
            last_seen_at=now,
            interval_seconds=interval,
            late_at=now + timedelta(seconds=interval + settings.MONITORING_LATE_SECONDS),
            next_due_at=now + timedelta(seconds=interval + settings.MONITORING_GRACE_SECONDS),
            uptime_seconds=values.get("uptime_seconds"),
            cpu_percent=values["cpu_percent"],
            memory_percent=values["memory_percent"],
            disk_percent=values["disk_percent"],
            disk_used_gb=values["disk_used_gb"],
            load1=load1,
        )
        if not updated:
            return False
        Sample.objects.create(
            node_id=node_id,
            at=now,
            cpu_percent=values["cpu_percent"],
            memory_percent=values["memory_percent"],
            disk_percent=values["disk_percent"],
            disk_used_gb=values["disk_used_gb"],
            load1=load1,
        )
    return True


def mark_unreachable(node_ids: list[int], now: datetime) -> int:
    """Unreachable (or failed) nodes keep their due time, so the evaluator takes them down
    then; one never seen up (no due time yet) is due now. Returns the rows given a due time."""
    if not node_ids:
        return 0
    return NodeLiveness.objects.filter(
        node_id__in=node_ids, last_seq=0, status__in=sorted(WATCHED), next_due_at__isnull=True
    ).update(next_due_at=now)


def apply_probe_result(job: Job) -> dict[str, list[int]]:
    """The probe job's result handler: a sample per reachable host, the others marked."""
    now = timezone.now()
    names = dict(job.nodes.values_list("name", "pk"))
    NodeLiveness.objects.bulk_create(
        [NodeLiveness(node_id=pk) for pk in names.values()], ignore_conflicts=True
    )
    results = reports(job)
    stored: list[int] = []
    missing: list[int] = []
    for name, node_id in sorted(names.items(), key=lambda item: item[1]):
        if name not in results:
            missing.append(node_id)
            continue
        try:
            values = check_report(results[name])
        except Invalid as invalid:
            logger.warning("probe of %s gave bad values: %s", name, invalid.errors)
            missing.append(node_id)
            continue
        if record(node_id, values, now):
            stored.append(node_id)
    mark_unreachable(missing, now)
    if missing:
        logger.info("probe: nodes unreachable or failed: %s", missing, extra={"job_id": job.pk})
    return {"stored": stored, "unreachable": missing}
