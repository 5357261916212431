"""Every state change of a job: launch, dispatch, cancel, relaunch, finish, sweep, reap.

``launch`` is called *inside* the domain action's transaction (transactional outbox): the Job
row exists if and only if the domain change committed, and dispatch happens on commit. If the
broker is down the job stays ``pending`` and the sweep dispatches it later. A launch with no
transaction around it (the API's, on PostgreSQL) publishes first and writes its row once,
already ``dispatched`` (``_publish_then_insert``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet, sql
from django.utils import timezone

from portal.core.api.parsers import nesting_exceeds
from portal.core.db import (
    execute_prepared,
    fetch_all_prepared,
    fetch_prepared,
    model_from_row,
)
from portal.core.errors import Conflict, PortalError
from portal.jobs import orphans, registry, signing
from portal.jobs.choices import TERMINAL, JobStatus
from portal.jobs.models import Job, JobEvent
from portal.jobs.playbooks import check_playbook, select_nodes
from portal.nodes.choices import Connection
from portal.nodes.models import Node, NodeGroup

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.db.models import Model

    from portal.accounts.models import Customer
    from portal.jobs.runner import Outcome

    AnyUser = User | AnonymousUser | None

logger = logging.getLogger(__name__)

ADHOC = "jobs.adhoc"
# Bounds on variables, whoever launches (API, admin, CLI): deeper values broke json.dumps in
# the JSON field and the signature with a RecursionError; no playbook needs either bound.
EXTRA_VARS_MAX_DEPTH = 32
EXTRA_VARS_MAX_BYTES = 1024 * 1024


# --- checks -------------------------------------------------------------------------------


def check_extra_vars(extra_vars: Any) -> dict[str, Any]:
    if extra_vars is None:
        return {}
    if not isinstance(extra_vars, dict):
        raise PortalError("Extra vars must be a mapping of names to values.", field="extra_vars")
    bad = [k for k in extra_vars if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise PortalError(f"Not a variable name: {bad[0]!r}.", field="extra_vars")
    if nesting_exceeds(extra_vars, EXTRA_VARS_MAX_DEPTH):
        raise PortalError(
            f"Extra vars nest too deeply (more than {EXTRA_VARS_MAX_DEPTH} levels).",
            field="extra_vars",
        )
    try:
        size = len(json.dumps(extra_vars))
    except (TypeError, ValueError):
        raise PortalError("Extra vars must be JSON values.", field="extra_vars") from None
    if size > EXTRA_VARS_MAX_BYTES:
        raise PortalError(
            f"Extra vars are too large (at most {EXTRA_VARS_MAX_BYTES} bytes as JSON).",
            field="extra_vars",
        )
    return extra_vars


# What a launch reads of its nodes: the checks below, the limit (names, group names), the
# queue, the ids it signs, the names it answers with. Reading only these keeps the launch's one
# read of its nodes cheap; a field read here and not listed costs a query per node.
LAUNCH_NODE_FIELDS = (
    "name",
    "enabled",
    "connection",
    "credential_id",
    "queue",
    "group__name",
    "group__queue",
)


def nodes_to_launch_on(nodes: QuerySet[Node]) -> list[Node]:
    """The rows a launch needs (LAUNCH_NODE_FIELDS), by name."""
    found = nodes.select_related("group").only(*LAUNCH_NODE_FIELDS).order_by()
    return sorted(found, key=lambda node: node.name)  # no ORDER BY to compile for a few rows


class NamedNodes(list):
    """The nodes a launch names, as ``nodes_named`` read them, and the job id reserved in the
    same query when the launch will publish first (``reserved_job_id``, else None)."""

    reserved_job_id: int | None = None

    def take_reserved_job_id(self) -> int | None:
        """The reserved id, once: a second launch on the same nodes reserves its own."""
        taken, self.reserved_job_id = self.reserved_job_id, None
        return taken


def _fields_in_model_order(model: type[Model], attnames: Iterable[str]) -> list[Any]:
    """``model.from_db`` takes a subset of the fields in the model's order."""
    wanted = set(attnames)
    return [field for field in model._meta.concrete_fields if field.attname in wanted]


_NAMED_NODE_FIELDS = _fields_in_model_order(
    Node, ["id", "name", "enabled", "connection", "credential_id", "queue", "group_id"]
)
_LOADED_GROUP_FIELDS = _fields_in_model_order(NodeGroup, ["id", "name", "queue"])


def nodes_named(names: list[str]) -> NamedNodes:
    """``nodes_to_launch_on(Node.objects.filter(name__in=names))`` in one written query: the
    API's launch names its nodes, and building that query in the ORM (or a RawQuerySet) took
    more CPU than running it. The same rows: LAUNCH_NODE_FIELDS, the group's loaded with them.

    A launch that will publish first (``_publishes_first``) needs its job's id before it
    writes anything; the same query reserves it, one round trip fewer per launch. Prepared
    on PostgreSQL (core/db.py): planning the join cost the server three times running it."""
    found = NamedNodes()
    if not names:
        return found
    reserving = _publishes_first()
    select, params = _nodes_named_sql(names, reserving)
    rows = fetch_all_prepared(connection, select, params)
    if reserving:
        found.reserved_job_id = rows[0][0]
        rows = [row[1:] for row in rows if row[1] is not None]
    width = len(_NAMED_NODE_FIELDS)
    for row in sorted(rows, key=lambda row: row[1]):  # no ORDER BY to compile for a few rows
        node = model_from_row(connection, Node, _NAMED_NODE_FIELDS, row[:width])
        group_id, group_values = node.group_id, (node.group_id, *row[width:])
        node.group = (
            model_from_row(connection, NodeGroup, _LOADED_GROUP_FIELDS, group_values)
            if group_id
            else None
        )
        found.append(node)
    return found


def _nodes_named_sql(names: list[str], reserving: bool) -> tuple[str, list[Any]]:
    node_columns = ", ".join(f"n.{field.column}" for field in _NAMED_NODE_FIELDS)
    group_columns = ", ".join(f"g.{f.column}" for f in _LOADED_GROUP_FIELDS if f.attname != "id")
    name_matches, name_params = _name_matches(names)
    select = (
        f"SELECT {node_columns}, {group_columns} "  # noqa: S608 - models' tables and columns
        f"FROM {Node._meta.db_table} n "
        f"LEFT JOIN {NodeGroup._meta.db_table} g ON g.id = n.group_id "
        f"WHERE {name_matches}"
    )
    if not reserving:
        return select, name_params
    # One row even when no name matches; nextval runs once, in a CTE of its own.
    return (
        "WITH reserved AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id) "  # noqa: S608
        f"SELECT reserved.id, found.* FROM reserved LEFT JOIN ({select}) found ON true",
        [Job._meta.db_table, *name_params],
    )


def _name_matches(names: list[str]) -> tuple[str, list[Any]]:
    # PostgreSQL: one statement text whatever the count, so one prepared statement.
    if connection.vendor == "postgresql":
        return "n.name = ANY(%s)", [list(names)]
    return f"n.name IN ({', '.join(['%s'] * len(names))})", list(names)


def check_targets(nodes: Iterable[Node] | None, limit: str, loaded: bool = False) -> list[Node]:
    if nodes is None:
        nodes = Node.objects.filter(enabled=True)
    if loaded:  # rows read in this request (nodes_to_launch_on or more): fresh enough
        candidates = list(nodes)
    else:
        if not isinstance(nodes, QuerySet):
            nodes = Node.objects.filter(pk__in=[node.pk for node in nodes])
        candidates = nodes_to_launch_on(nodes)  # fresh: enabled and credential may have changed
    chosen = select_nodes(candidates, limit)
    if not chosen:
        field = "limit" if limit else "nodes"
        raise PortalError(
            f"The limit {limit!r} matches no enabled node." if limit else "No target node.",
            field=field,
            code="no_hosts",
        )
    disabled = [n.name for n in chosen if not n.enabled]
    if disabled:
        raise PortalError(f"Node {disabled[0]} is disabled.", field="nodes")
    keyless = [n.name for n in chosen if n.connection == Connection.SSH and not n.credential_id]
    if keyless:
        raise PortalError(
            f"Node {keyless[0]} has no credential to log in with.",
            field="nodes",
            code="no_credential",
        )
    return chosen


def routing_queue(nodes: Iterable[Node]) -> str:
    """The nodes' queue when they agree (one site), else the default queue."""
    queues = {node.routing_queue for node in nodes}
    return queues.pop() if len(queues) == 1 else settings.CELERY_TASK_DEFAULT_QUEUE


def split_secrets(
    spec: registry.ActionSpec, extra_vars: dict[str, Any], secret_vars: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sensitive values never land in ``extra_vars``: they are stored encrypted."""
    secrets = dict(secret_vars or {})
    public: dict[str, Any] = {}
    for name, value in extra_vars.items():
        (secrets if name in spec.sensitive_vars else public)[name] = value
    return public, secrets


# --- launch and dispatch ------------------------------------------------------------------


def launch(
    *,
    playbook: str,
    action: str = ADHOC,
    nodes: Iterable[Node] | None = None,
    limit: str = "",
    extra_vars: Any = None,
    secret_vars: dict[str, Any] | None = None,
    target: Model | None = None,
    customer: Customer | None = None,
    requested_by: AnyUser = None,
    check_mode: bool = False,
    timeout: int | None = None,
    idle_timeout: int | None = None,
    attempt: int = 1,
    retry_of: Job | None = None,
    not_before: datetime | None = None,
    nodes_loaded: bool = False,
    enqueue: bool = True,
) -> Job:
    """``enqueue=False``: the caller runs the job itself (``runplaybook``), so no worker
    sharing the broker may claim it first. ``idle_timeout``: for a task that may rightly
    stay silent longer than JOB_IDLE_TIMEOUT (an installer's script under its own timeout)."""
    spec = registry.get(action)
    if spec.playbook and spec.playbook != playbook:
        raise PortalError(
            f"Action {action} runs {spec.playbook}, not {playbook}.", field="playbook"
        )
    check_playbook(playbook)
    extra_vars, secrets = split_secrets(spec, check_extra_vars(extra_vars), secret_vars)
    targets = check_targets(nodes, limit, loaded=nodes_loaded)
    job = Job(
        playbook=playbook,
        limit=limit,
        extra_vars=extra_vars,
        secret_vars=json.dumps(secrets) if secrets else "",
        sensitive_names=sorted(set(spec.sensitive_vars) | set(secrets)),
        check_mode=check_mode,
        action=action,
        customer=customer,
        requested_by=requested_by if requested_by and requested_by.pk else None,
        queue=routing_queue(targets),
        timeout=timeout or spec.timeout or settings.JOB_TIMEOUT,
        idle_timeout=idle_timeout or settings.JOB_IDLE_TIMEOUT,
        attempt=attempt,
        retry_of=retry_of,
        not_before=not_before,
        **_target_fields(target),
    )
    node_ids = [node.pk for node in targets]
    if enqueue and _publishes_first():
        job.pk = nodes.take_reserved_job_id() if isinstance(nodes, NamedNodes) else None
        _publish_then_insert(job, node_ids)
    else:
        insert_signed(job, node_ids)
        if enqueue:  # at once if the caller has no transaction: the rows are committed
            transaction.on_commit(lambda: dispatch(job))
    job.launched_nodes = targets
    logger.info("job launched: %s", playbook, extra={"job_id": job.pk})
    return job


def insert_signed(job: Job, node_ids: list[int]) -> None:
    """The job's row, signed, and its node rows: all or none (the caller's transaction, if
    any, decides whether they stay)."""
    if connection.vendor == "postgresql":
        # Inside a caller's transaction, a savepoint as ever: if this fails, the caller's
        # transaction stays usable. Alone, the one statement needs none.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            _insert_in_one_statement(job, node_ids)
        return
    with transaction.atomic():  # the row first: the signature covers the id it gets
        job.save(force_insert=True)
        job.signature = signing.sign(job, node_ids)
        Job.objects.filter(pk=job.pk).update(signature=job.signature)
        Job.nodes.through.objects.bulk_create(
            [Job.nodes.through(job_id=job.pk, node_id=node_id) for node_id in node_ids]
        )


def _publishes_first() -> bool:
    """A launch with no caller's transaction (the API's) on PostgreSQL: nothing can roll its
    row back, so its message may go out before the row is written."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _publish_then_insert(job: Job, node_ids: list[int]) -> None:
    """The message first, then the job's row in its one statement: already ``dispatched``
    when the message is out, ``pending`` for the sweep when the publish failed. One statement
    fewer than the INSERT and the ``dispatched`` mark, and a job is still ``dispatched`` only
    once its message is out. A worker may get the message before the row exists: it waits
    for it (``job_named_by``)."""
    _sign_with_reserved_id(job, node_ids)
    if publish(job):
        job.status, job.dispatched_at = JobStatus.DISPATCHED, timezone.now()
    _insert_rows(job, node_ids)


def _insert_in_one_statement(job: Job, node_ids: list[int]) -> None:
    """PostgreSQL: the id first (the signature covers it), then the job and its node rows in
    one ``WITH job AS (INSERT ...) INSERT ...``: atomic by itself, so no BEGIN and COMMIT
    around it, and when the caller has no transaction, one commit."""
    _sign_with_reserved_id(job, node_ids)
    _insert_rows(job, node_ids)


def _sign_with_reserved_id(job: Job, node_ids: list[int]) -> None:
    """The id reserved already (``nodes_named``), else reserved now."""
    if job.pk is None:
        job.pk = reserve_job_id()
    job.signature = signing.sign(job, node_ids)


def _insert_rows(job: Job, node_ids: list[int]) -> None:
    execute_prepared(connection, _insert_rows_sql(job), [*_insert_params(job), node_ids])
    job._state.adding, job._state.db = False, connection.alias  # as save() leaves it


# The statement is the same for every job (every column, one row): compiled once per
# database, which was a tenth of a launch's CPU in the web process.
_INSERT_ROWS_SQL: dict[str, str] = {}


def _insert_rows_sql(job: Job) -> str:
    compiled = _INSERT_ROWS_SQL.get(connection.alias)
    if compiled is None:
        insert = sql.InsertQuery(Job)
        insert.insert_values(Job._meta.local_concrete_fields, [job])
        [(insert_job, _)] = insert.get_compiler(connection=connection).as_sql()
        through = Job.nodes.through._meta
        table, job_column, node_column = (
            connection.ops.quote_name(name)
            for name in (
                through.db_table,
                through.get_field("job").column,
                through.get_field("node").column,
            )
        )
        compiled = _INSERT_ROWS_SQL[connection.alias] = (
            f"WITH job AS ({insert_job} RETURNING id) "  # noqa: S608 - the ORM's SQL, model names
            f"INSERT INTO {table} ({job_column}, {node_column}) "
            "SELECT job.id, node_id FROM job, unnest(%s::bigint[]) AS node_id"
        )
    return compiled


# Django's own fields of these kinds send None as NULL: preparing a None (most of a new job's
# times and counters) took half the time of preparing all the values.
_NONE_IS_NULL = (
    models.BooleanField,
    models.CharField,
    models.DateTimeField,
    models.FloatField,
    models.ForeignKey,
    models.IntegerField,
)
_INSERT_FIELDS = [
    (field, isinstance(field, _NONE_IS_NULL)) for field in Job._meta.local_concrete_fields
]


def _insert_params(job: Job) -> list[Any]:
    """The values the ORM's INSERT of ``job`` sends, as its compiler prepares them."""
    params = []
    for field, none_is_null in _INSERT_FIELDS:
        value = field.pre_save(job, True)
        if value is not None or not none_is_null:
            value = field.get_db_prep_save(value, connection=connection)
        params.append(value)
    return params


def reserve_job_id() -> int:
    """PostgreSQL: the id the job will have, so its signature goes into its one INSERT."""
    sql = "SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
    row = fetch_prepared(connection, sql, [Job._meta.db_table])
    assert row is not None  # nextval always answers one row
    return row[0]


def _target_fields(target: Model | None) -> dict[str, Any]:
    if target is None:
        return {}
    return {"target_type": ContentType.objects.get_for_model(target), "target_id": str(target.pk)}


def dispatch(job_or_id: Job | int) -> bool:
    """Publish the job to its queue; on a broker failure it stays pending for the sweep."""
    job = job_or_id if isinstance(job_or_id, Job) else Job.objects.filter(pk=job_or_id).first()
    if job is None or job.status not in (JobStatus.PENDING, JobStatus.DISPATCHED):
        return False
    if not publish(job):
        return False
    job.mark_dispatched()
    return True


def publish(job: Job) -> bool:
    """Send the job's message to its queue (at ``not_before``); False on a broker failure."""
    from portal.jobs.tasks import run_job

    countdown: float | None = None
    if job.not_before and job.not_before > timezone.now():
        countdown = (job.not_before - timezone.now()).total_seconds()
    try:
        run_job.apply_async(
            # Celery takes a list and None too (its stubs say a tuple and a float)
            args=[job.pk, job.signature],  # type: ignore[arg-type]
            queue=job.queue,
            countdown=countdown,  # type: ignore[arg-type]
            retry=True,
            retry_policy=settings.JOB_PUBLISH_RETRY,
        )
    except Exception as exc:  # any broker/transport failure: the sweep retries
        logger.warning("dispatch failed, job stays pending: %s", exc, extra={"job_id": job.pk})
        return False
    return True


def sweep_pending(older_than: timedelta | None = None) -> int:
    """Re-dispatch jobs still pending (broker was down) or dispatched long ago (message lost).

    Duplicates are harmless: a job is claimed at most once.
    """
    now = timezone.now()
    if older_than is None:
        older_than = timedelta(seconds=settings.JOB_SWEEP_PENDING_AFTER)
    pending_cutoff = now - older_than
    dispatched_cutoff = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER)
    stuck = Q(status=JobStatus.PENDING, created_at__lt=pending_cutoff) | Q(
        status=JobStatus.DISPATCHED, dispatched_at__lt=dispatched_cutoff
    )
    due = Job.objects.filter(stuck).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
    count = 0
    for job_id in due.values_list("pk", flat=True)[:500]:
        count += dispatch(job_id)
    return count


# --- cancel, relaunch ---------------------------------------------------------------------


def cancel(job: Job, by: object = None) -> Job:
    job.refresh_from_db()
    if job.is_terminal:
        raise Conflict(
            f"Job {job.pk} already ended ({job.status}); nothing to cancel.",
            field="status",
            code="already_finished",
        )
    who = f" by {by}" if by else ""
    if job.cancel_before_start(f"canceled{who} before it started"):
        finalize(job)
        return job
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def failed_hosts(job: Job) -> list[str]:
    return sorted(
        host
        for host, counts in job.host_summary.items()
        if counts.get("failures") or counts.get("unreachable")
    )


def unreachable_only(job: Job) -> list[str]:
    """Hosts to retry: unreachable ones, when nothing actually failed."""
    summary = job.host_summary
    if any(counts.get("failures") for counts in summary.values()):
        return []
    return sorted(host for host, counts in summary.items() if counts.get("unreachable"))


def relaunch(
    job: Job,
    *,
    failed_only: bool = False,
    requested_by: AnyUser = None,
    not_before: datetime | None = None,
    retry: bool = False,
    hosts: list[str] | None = None,
) -> Job:
    """``hosts``: run again on these hosts only (``failed_only``: on the failed ones)."""
    limit = job.limit
    if failed_only and hosts is None:
        hosts = failed_hosts(job)
        if not hosts:
            raise Conflict("No failed or unreachable hosts to relaunch.", field="hosts")
    if hosts:
        limit = ",".join(hosts)
    return launch(
        playbook=job.playbook,
        action=job.action,
        nodes=list(job.nodes.all()),
        limit=limit,
        extra_vars=job.extra_vars,
        secret_vars=job.secrets(),
        target=job.target,
        customer=job.customer,
        requested_by=requested_by or job.requested_by,
        check_mode=job.check_mode,
        timeout=job.timeout,
        idle_timeout=job.idle_timeout,
        attempt=job.attempt + 1 if retry else 1,
        retry_of=job if retry else None,
        not_before=not_before,
    )


# --- finish: result handlers, retries, reaper ---------------------------------------------


def finalize(job: Job) -> Job | None:
    """After a terminal status: retry unreachable hosts if the action asks, else hand the
    result to the owning app. Returns the retry job, if one was launched."""
    spec = registry.all_actions().get(job.action)
    retry_job = _maybe_retry(job, spec)
    if spec is None:
        return retry_job
    if spec.forget_secrets and job.secret_vars:
        forget_secrets(job)
    if retry_job is not None:
        _call_handler(spec.on_retry, job, retry_job)
    else:
        _call_handler(spec.on_finish, job)
    return retry_job


def _call_handler(handler: Callable[..., Any] | None, job: Job, *args: Any) -> None:
    if handler is None:
        return
    try:
        handler(job, *args)
    except Exception:
        # The job's outcome is recorded whatever the handler does; its failure is logged.
        logger.exception("result handler of %s failed", job.action, extra={"job_id": job.pk})


def _maybe_retry(job: Job, spec: registry.ActionSpec | None) -> Job | None:
    if spec is None or spec.retry is None or job.status != JobStatus.FAILED:
        return None
    hosts = (spec.retry.hosts or unreachable_only)(job)
    if not hosts or not spec.retry.allows(job.attempt):
        return None
    delay = spec.retry.delay(job.attempt)
    logger.info("retrying hosts %s in %.0fs", hosts, delay, extra={"job_id": job.pk})
    return relaunch(
        job, hosts=hosts, retry=True, not_before=timezone.now() + timedelta(seconds=delay)
    )


def forget_secrets(job: Job) -> None:
    """The run is over and any retry holds its own copy: drop the encrypted secrets (the
    signature covered them only until the job was claimed, which cannot happen again)."""
    Job.objects.filter(pk=job.pk).update(secret_vars="")
    job.secret_vars = ""


def reap_lost(now: datetime | None = None) -> list[int]:
    """Running jobs whose worker stopped beating become ``lost``: what their run left on the
    nodes is ended, then their owner compensates. Processes and data dirs that dead workers
    left on this machine are removed on every call (portal.jobs.orphans)."""
    orphans.clean_up_local()
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_LOST_AFTER)
    lost = []
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before):
        if job.mark_lost(stale_before):
            logger.warning("job lost: %s", job.reason, extra={"job_id": job.pk})
            end_remote_run(job)
            finalize(job)
            lost.append(job.pk)
    return lost


def end_remote_run(job: Job) -> Job | None:
    """Launch the job that ends the lost ``job``'s processes on its SSH nodes (local ones
    are handled by orphans.clean_up_local). Returns it, or None."""
    nodes = [node for node in job.nodes.all() if node.connection == Connection.SSH]
    if not nodes or job.action == orphans.END_RUN_ACTION:
        return None
    try:
        return launch(
            playbook=orphans.END_RUN_PLAYBOOK,
            action=orphans.END_RUN_ACTION,
            nodes=nodes,
            extra_vars={"portal_job_run": orphans.run_tag(job)},
            target=job,
        )
    except PortalError as exc:  # e.g. a node disabled since: nothing to reach
        logger.warning("cannot end the lost run on its nodes: %s", exc, extra={"job_id": job.pk})
    except Exception:  # the owner of the lost job must still be told
        logger.exception("cannot end the lost run on its nodes", extra={"job_id": job.pk})
    return None


def execute(job_id: int, signature: str, worker: str) -> Job | None:
    """Worker side: verify, claim, run, record the outcome, hand it to the owner."""
    from portal.jobs import runner

    job = job_named_by(job_id)
    if job is None:
        logger.error("message for unknown job %s dropped", job_id)
        return None
    if not signing.carries(job, signature):
        # Stale (another database behind the same broker) or forged: the job's own message
        # still runs it, so the job is left alone.
        logger.error("message without the job's launch signature dropped", extra={"job_id": job.pk})
        return None
    if not signing.verify(job, signature):
        refuse(job, "launch signature does not verify: the job was altered in the database")
        return job
    if not job.claim(worker):
        logger.info(
            "job already claimed or ended (%s); duplicate message dropped",
            job.status,
            extra={"job_id": job.pk},
        )
        return None
    logger.info("job running on %s", worker, extra={"job_id": job.pk})
    outcome = runner.run(job)
    record_outcome(job, outcome)
    finalize(job)
    return job


def job_named_by(job_id: int) -> Job | None:
    """The row a message names. A launch outside any transaction publishes before it writes
    the row (``_publish_then_insert``), so a quick worker may hold the message first: it
    looks again, a few milliseconds apart, for up to JOB_MESSAGE_ROW_WAIT seconds before
    taking the message for one of an unknown job (another database behind the broker)."""
    deadline = time.monotonic() + settings.JOB_MESSAGE_ROW_WAIT
    pause = 0.002
    while (job := Job.objects.filter(pk=job_id).first()) is None:
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(2 * pause, 0.1)
    return job


def record_outcome(job: Job, outcome: Outcome) -> None:
    status, reason = outcome.status, outcome.reason
    stored = JobEvent.objects.filter(job=job).count()
    if stored != outcome.last_counter and status != JobStatus.LOST:
        status = JobStatus.ERROR
        reason = f"events incomplete: stored {stored} of {outcome.last_counter}"
    if status == JobStatus.LOST:
        job.refresh_from_db()  # the reaper already recorded it
        return
    if status == JobStatus.FAILED and any(
        counts.get("unreachable") for counts in outcome.host_summary.values()
    ):
        reason = host_key_refusal(job, outcome.host_summary) or reason
    job.finish(
        status,
        rc=outcome.rc,
        reason=reason,
        host_summary=outcome.host_summary,
        event_count=stored,
        event_lag_p95_ms=outcome.event_lag_p95_ms,
    )
    logger.info("job %s (rc %s)", status, outcome.rc, extra={"job_id": job.pk})


def host_key_refusal(job: Job, host_summary: dict[str, dict[str, int]]) -> str:
    """'host key of node X changed (expected …, got …)…' when ssh refused a pinned key."""
    from portal.nodes.actions import refusal_reason

    unreachable = job.events.filter(event="runner_on_unreachable")
    hosts = [host for host, counts in host_summary.items() if counts.get("unreachable")]
    nodes = job.nodes.filter(name__in=hosts).select_related("jump_host__credential")
    return refusal_reason(unreachable.values_list("stdout", flat=True), nodes)


def refuse(job: Job, reason: str) -> None:
    if job.refuse(reason):
        logger.error("job refused: %s", reason, extra={"job_id": job.pk})
        finalize(job)


__all__ = [
    "ADHOC",
    "TERMINAL",
    "cancel",
    "dispatch",
    "execute",
    "finalize",
    "launch",
    "reap_lost",
    "refuse",
    "relaunch",
    "sweep_pending",
]
