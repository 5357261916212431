"""Status machines: one declared table per model, one guarded move, one deadline sweep.

A model with a ``status`` declares, in one place, which moves it allows and which statuses end
its life. :meth:`StatusModel.move` applies a move as one guarded
``UPDATE … WHERE pk = … AND status IN (…)``, so two workers (or a worker and a sweep) can never
both win it; it writes the model's history row where it keeps one, and sets or clears the
new status's deadline (``status_expires``, as MAAS does). :func:`expire_statuses` (beat:
``core.expire_statuses``) moves every overdue row of every such model to its timeout status
through the same guarded move, with the reason ("timed out after 45 minutes in installing").

A new app (fleet VMs, installations, cluster nodes) declares its machine like this::

    class Installation(StatusModel, TimeStampedModel):
        status = models.CharField(max_length=20, choices=S.choices, default=S.QUEUED)
        reason = models.TextField(blank=True)

        TRANSITIONS = {  # from -> the statuses it may move to
            S.QUEUED: {S.INSTALLING, S.CANCELED},
            S.INSTALLING: {S.INSTALLED, S.FAILED},
            S.FAILED: {S.QUEUED},
        }
        TERMINAL = frozenset({S.INSTALLED, S.CANCELED})  # no way out of these
        STATUS_TIMEOUTS = {S.INSTALLING: timedelta(minutes=45)}  # optional deadlines
        TIMEOUT_STATUS = S.FAILED  # where the sweep moves an overdue row
        STATUS_REASON_FIELD = "reason"  # where move(reason=...) and the sweep write why

        class Meta(StatusModel.Meta):  # inherit it: the partial index on status_expires
            ordering = ["-created_at"]

then ``installation.move(S.INSTALLED, [S.INSTALLING], reason="exit 0", rc=0)`` in its actions,
``makemigrations`` for ``status_expires`` and its index, and a table-driven test like
tests/core/test_status_machine.py. ``manage.py check`` refuses a table that names unknown
statuses, lets a TERMINAL status move, leaves a status without a way out, or times out into
a status its table does not allow.

Per instance: override :meth:`StatusModel.status_timeout` (a node's own install timeout) or
:meth:`StatusModel.timeout_status` (a failure status per phase). History: override
:meth:`StatusModel.record_move` (Workspace writes a WorkspaceEvent). What the owner does once
a row timed out (compensate, roll back, notify): override :meth:`StatusModel.status_timed_out`.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any, ClassVar, cast

from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models, router, transaction
from django.db.models import Case, F, Func, Q, QuerySet, Value, When
from django.utils import timezone

from portal.core.errors import Conflict

logger = logging.getLogger(__name__)

STATUS_FIELD: str = "status"
# Rows moved per model and sweep; the next beat takes the rest (oldest deadlines first).
SWEEP_BATCH = 500


class TransitionNotAllowed(Conflict):
    """A move the model's table does not declare (409: it clashes with the current state)."""

    code = "invalid_transition"

    def __init__(self, obj: "StatusModel", from_statuses: Iterable[str], to: str) -> None:
        model = type(obj)
        pairs = ", ".join(f"{source} -> {to}" for source in sorted(from_statuses))
        sources = sorted(_sources(model).get(to, ()))
        why = f"{to} is reached from {', '.join(sources)}" if sources else f"nothing moves to {to}"
        super().__init__(
            f"{model._meta.verbose_name} {obj.pk}: {pairs} is not a transition of "
            f"{model.__name__} ({why})",
            field="status",
        )
        self.from_statuses = tuple(sorted(from_statuses))
        self.to = to


class StatusModel(models.Model):
    """Abstract base of a model with a ``status`` field and a declared transition table."""

    # from -> the statuses it may move to; a TERMINAL status has no entry (or an empty one).
    TRANSITIONS: ClassVar[Mapping[str, Iterable[str]]] = {}
    TERMINAL: ClassVar[frozenset[str]] = frozenset()
    # Optional deadlines: status -> how long a row may stay in it; overdue rows are moved to
    # TIMEOUT_STATUS (a status, or a mapping status -> failure status) by the sweep.
    STATUS_TIMEOUTS: ClassVar[Mapping[str, timedelta]] = {}
    TIMEOUT_STATUS: ClassVar[str | Mapping[str, str] | None] = None
    # Field that move(reason=...) and the sweep write the reason to (None: history only).
    STATUS_REASON_FIELD: ClassVar[str | None] = None
    # Field stamped with the time of every move (None: none).
    STATUS_CHANGED_AT_FIELD: ClassVar[str | None] = None
    # Reload the whole row after a won move (False: set what was written, reload only
    # fields written as expressions such as F("attempts") + 1; for hot paths).
    REFRESH_AFTER_MOVE: ClassVar[bool] = True

    status_expires = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the current status times out (set by each move, from the model's "
        "STATUS_TIMEOUTS); core.expire_statuses moves overdue rows.",
    )

    class Meta:
        abstract = True
        indexes = [
            # Serves the sweep's "status_expires <= now"; holds only rows with a deadline.
            models.Index(
                fields=["status_expires"],
                condition=Q(status_expires__isnull=False),
                name="%(app_label)s_%(class)s_exp",
            ),
        ]

    # --- the move ------------------------------------------------------------------------

    def move(
        self,
        to: str,
        allowed_from: Iterable[str] | None = None,
        *,
        reason: str | None = None,
        where: Q | None = None,
        history: Mapping[str, Any] | None = None,
        durable: bool = True,
        **fields: Any,
    ) -> bool:
        """Move to ``to`` if the row is still in one of ``allowed_from`` (default: every
        status the table allows to reach ``to``); returns whether this call won.

        ``allowed_from`` may narrow the table, never widen it: a status in it from which the
        table does not allow ``to`` raises :class:`TransitionNotAllowed`, as does a move the
        table does not allow from the instance's own status when ``allowed_from`` is not
        given. ``where`` adds conditions to the guard; ``fields`` are written in the same
        UPDATE (expressions allowed); ``reason`` goes to STATUS_REASON_FIELD and the history;
        ``history`` carries extra values for :meth:`record_move`. The won row is refreshed
        into the instance. ``durable=False``: a move whose loss in a database crash does no
        harm (something redoes it) need not wait for the disk (:func:`without_commit_flush`).
        """
        declared = _sources(type(self)).get(to, frozenset())
        if allowed_from is None:
            allowed = set(declared)
            if self.status not in allowed:
                raise TransitionNotAllowed(self, [self.status], to)
        else:
            allowed = set(allowed_from)
            if not allowed <= declared:
                raise TransitionNotAllowed(self, allowed - declared, to)
        if not allowed:
            return False
        if "status" in fields:
            raise TypeError("move() takes the new status as `to`, not as a field")
        from_status = self.status
        if from_status not in allowed and len(allowed) == 1:
            from_status = next(iter(allowed))  # the only status the row can have come from
        now = timezone.now()
        values: dict[str, Any] = {name: now for name in _auto_now_fields(type(self))}
        if self.STATUS_CHANGED_AT_FIELD:
            values[self.STATUS_CHANGED_AT_FIELD] = now
        if reason is not None and self.STATUS_REASON_FIELD:
            values[self.STATUS_REASON_FIELD] = reason
        if self.TIMEOUT_STATUS:  # a model without deadlines never writes one
            values["status_expires"] = self._expiry(to, allowed, now)
        values.update(fields)
        update = self._guarded_update(to, allowed, values, where, durable)
        if type(self).record_move is StatusModel.record_move:  # no history: one UPDATE
            won = bool(update())
        else:
            with transaction.atomic(savepoint=False):  # the move and its history, or neither
                won = bool(update())
                if won:
                    self.record_move(from_status, to, reason or "", **(history or {}))
        if won:
            self._load_moved(to, values)
        return won

    def _guarded_update(
        self, to: str, allowed: set[str], values: dict[str, Any], where: Q | None, durable: bool
    ) -> Callable[[], int]:
        """The move's UPDATE, as a call returning how many rows it changed. Plain values (no
        expression, no extra ``where``) take :func:`plain_guarded_update`; the rest the ORM."""
        model = type(self)
        if where is None and not any(hasattr(v, "resolve_expression") for v in values.values()):
            return lambda: plain_guarded_update(model, self.pk, allowed, to, values, durable)
        rows = model._base_manager.filter(Q(pk=self.pk, status__in=sorted(allowed)))
        if where is not None:
            rows = rows.filter(where)
        if not durable:
            rows = without_commit_flush(rows)
        return lambda: rows.update(status=to, **values)

    def _expiry(self, to: str, allowed: set[str], now: datetime) -> Any:
        timeout = self.status_timeout(to)
        if timeout is None:
            return None
        expires = now + timeout
        if to in allowed:  # a move to the same status keeps the deadline it had
            return Case(
                When(status=to, then=F("status_expires")),
                default=Value(expires, output_field=models.DateTimeField()),
            )
        return expires

    def _load_moved(self, to: str, values: dict[str, Any]) -> None:
        if self.REFRESH_AFTER_MOVE:
            self.refresh_from_db()
            return
        self.status = to
        computed = []
        for name, value in values.items():
            if hasattr(value, "resolve_expression"):
                computed.append(name)
            else:
                setattr(self, name, value)
        if computed:
            self.refresh_from_db(fields=computed)

    # --- hooks a model may override -------------------------------------------------------

    def record_move(self, from_status: str, to: str, reason: str, **history: Any) -> None:
        """Write the history row of a won move (in the move's transaction). Default: none."""

    def status_timeout(self, status: str) -> timedelta | None:
        """How long a row may stay in ``status`` (per instance if overridden)."""
        return self.STATUS_TIMEOUTS.get(status)

    def timeout_status(self, status: str) -> str:
        """Where an overdue row in ``status`` goes."""
        target = self.TIMEOUT_STATUS
        if target is None:
            raise TypeError(f"{type(self).__name__} declares no TIMEOUT_STATUS")
        return target if isinstance(target, str) else target[status]

    def status_timed_out(self, from_status: str) -> None:
        """Called after the sweep moved this row (compensate, roll back). Default: nothing."""

    # --- reads ----------------------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    # --- the deadline ---------------------------------------------------------------------

    def expire(self, now: datetime) -> bool:
        """Move this row to its timeout status if it is still overdue (guarded like every
        move: a row that moved on, or whose deadline moved, is left alone)."""
        status = self.status
        timeout = self.status_timeout(status)
        reason = (
            f"timed out after {humane_duration(timeout)} in {status}"
            if timeout
            else f"timed out in {status}"
        )
        # The base move, not an override with another signature (Workspace.move).
        won = StatusModel.move(
            self,
            self.timeout_status(status),
            [status],
            reason=reason,
            where=Q(status_expires__lte=now),
        )
        if won:
            logger.warning(
                "%s %s %s", self._meta.verbose_name, self.pk, reason, extra={"object_id": self.pk}
            )
            self.status_timed_out(status)
        return won

    # --- checks (manage.py check) ---------------------------------------------------------

    @classmethod
    def check(cls, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if not cls._meta.abstract:
            errors += check_machine(cls)
        return errors


class _CommitWithoutFlush(Func):
    """TRUE; and the transaction it runs in commits without waiting for the WAL flush."""

    template = "set_config('synchronous_commit', 'off', true) = 'off'"
    output_field = models.BooleanField()


def plain_guarded_update(
    model: type[models.Model],
    pk: Any,
    allowed: Iterable[str],
    to: str,
    values: Mapping[str, Any],
    durable: bool = True,
) -> int:
    """``UPDATE … SET status = to, … WHERE pk = … AND status IN (allowed)``, written here
    rather than by the ORM: building the UPDATE took the ORM more CPU than the database took
    to run it, on the hottest moves (a launch's ``dispatched`` mark, a worker's claim). The
    same SQL ``QuerySet.update`` writes for plain values: each prepared by its field, a model
    instance by ``prepare_database_save`` as the ORM does. ``durable=False``: as
    :func:`without_commit_flush`."""
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    columns, params = [], []
    for name, value in {"status": to, **values}.items():
        field = cast(models.Field, meta.get_field(name))
        if hasattr(value, "prepare_database_save"):
            value = value.prepare_database_save(field)
        columns.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    allowed = sorted(allowed)
    status = quote(cast(models.Field, meta.get_field("status")).column)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(columns)} "  # noqa: S608 - model names
        f"WHERE {quote(meta.pk.column)} = %s "
        f"AND {status} IN ({', '.join(['%s'] * len(allowed))})"
    )
    params += [meta.pk.get_db_prep_value(pk, connection), *allowed]
    if not durable and _commits_alone(connection):
        sql += f" AND {_CommitWithoutFlush.template}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def without_commit_flush(rows: QuerySet[Any]) -> QuerySet[Any]:
    """``rows`` whose UPDATE, when it is a transaction of its own on PostgreSQL, commits
    without waiting for the disk (``synchronous_commit`` off for that one transaction).

    A commit is a flush of the write-ahead log: about a millisecond, more than the rest of a
    small UPDATE. The change is visible at once as usual; only a database crash in the next
    few hundred milliseconds can lose it, so use this only for a move that is redone when
    lost. Inside a caller's transaction it changes nothing: the caller's commit decides.
    """
    if not _commits_alone(connections[rows.db]):
        return rows
    return rows.filter(_CommitWithoutFlush())


def _commits_alone(connection: Any) -> bool:
    """PostgreSQL outside a caller's transaction: a statement here is its own transaction,
    whose commit setting it may change (see :func:`without_commit_flush`)."""
    return connection.vendor == "postgresql" and connection.get_autocommit()


# --- the sweep ----------------------------------------------------------------------------


def status_models() -> list[type[StatusModel]]:
    """Every installed model on this base that declares deadlines (a TIMEOUT_STATUS)."""
    return [
        model
        for model in apps.get_models()
        if issubclass(model, StatusModel) and model.TIMEOUT_STATUS
    ]


def expire_statuses(now: datetime | None = None) -> dict[str, int]:
    """Move every overdue row (``status_expires <= now``) to its timeout status. Returns how
    many rows of each model moved. A row whose hook fails is logged; the sweep goes on."""
    now = now or timezone.now()
    moved = {}
    for model in status_models():
        count = 0
        for obj in overdue(model, now)[:SWEEP_BATCH]:
            try:
                count += obj.expire(now)
            except Exception:
                logger.exception("expiring %s %s failed", model._meta.label, obj.pk)
        moved[model._meta.label] = count
    return moved


def overdue(model: type[StatusModel], now: datetime) -> "models.QuerySet[Any]":
    """The rows past their deadline, oldest deadline first (served by the partial index)."""
    return model._base_manager.filter(status_expires__lte=now).order_by("status_expires")


def humane_duration(duration: timedelta) -> str:
    """'45 minutes', '2 hours', '90 seconds', '1 day'."""
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


# --- per-class caches ---------------------------------------------------------------------


@cache
def _sources(model: type[StatusModel]) -> dict[str, frozenset[str]]:
    """to -> the statuses the table allows to move there."""
    sources: dict[str, set[str]] = {}
    for source, targets in model.TRANSITIONS.items():
        for target in targets:
            sources.setdefault(str(target), set()).add(str(source))
    return {target: frozenset(found) for target, found in sources.items()}


@cache
def _auto_now_fields(model: type[StatusModel]) -> tuple[str, ...]:
    # .update() skips auto_now; a move is a change like a save.
    return tuple(
        field.name for field in model._meta.concrete_fields if getattr(field, "auto_now", False)
    )


def check_machine(model: type[StatusModel]) -> list[checks.CheckMessage]:
    """What ``manage.py check`` says about a model's table."""

    def error(message: str, code: int) -> checks.Error:
        return checks.Error(message, obj=model, id=f"core.E1{code:02d}")

    try:
        status_field = model._meta.get_field(STATUS_FIELD)
    except FieldDoesNotExist:
        return [error("a StatusModel needs a `status` field", 1)]
    statuses = {str(value) for value, _ in (getattr(status_field, "choices", None) or [])}
    errors: list[checks.CheckMessage] = []
    table = {
        str(source): {str(t) for t in targets} for source, targets in model.TRANSITIONS.items()
    }
    named = (
        set(table)
        | {t for targets in table.values() for t in targets}
        | set(model.TERMINAL)
        | set(model.STATUS_TIMEOUTS)
    )
    for unknown in sorted(named - statuses):
        errors.append(error(f"{unknown!r} is not a status of {model.__name__}", 2))
    for status in sorted(statuses):
        if status in model.TERMINAL and table.get(status):
            errors.append(
                error(f"{status} is TERMINAL but may move to {', '.join(sorted(table[status]))}", 3)
            )
        if status not in model.TERMINAL and not table.get(status):
            errors.append(
                error(f"{status} has no way out: declare its moves or add it to TERMINAL", 4)
            )
    if model.STATUS_TIMEOUTS and not model.TIMEOUT_STATUS:
        errors.append(error("STATUS_TIMEOUTS needs a TIMEOUT_STATUS", 5))
    elif model.TIMEOUT_STATUS:
        for status in sorted(map(str, model.STATUS_TIMEOUTS)):
            try:
                target = model.timeout_status(model(), status)
            except KeyError:
                errors.append(error(f"TIMEOUT_STATUS names no failure status for {status}", 5))
                continue
            if target not in table.get(status, ()):
                errors.append(
                    error(f"{status} times out into {target}, which its table does not allow", 6)
                )
    for name in (model.STATUS_REASON_FIELD, model.STATUS_CHANGED_AT_FIELD):
        if name and name not in {f.name for f in model._meta.concrete_fields}:
            errors.append(error(f"{name!r} is not a field of {model.__name__}", 7))
    if not any(index.fields == ["status_expires"] for index in model._meta.indexes):
        errors.append(
            error(
                "no index on status_expires: let Meta inherit StatusModel.Meta (or add its index)",
                8,
            )
        )
    return errors
