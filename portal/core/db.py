"""Prepared statements for the portal's hottest statements (PostgreSQL).

Django's cursors bind parameters client-side and never prepare (for connection poolers), so
PostgreSQL parses and plans every statement each time it runs. For a short statement that is
most of the server's work: a heartbeat's UPDATE and INSERT, a launch's read of its nodes and
its ``INSERT`` of the job and its node rows (planning the nodes' join cost three times its
execution). The statements here are bound server-side and prepared once per connection
(psycopg keeps them per connection, by text and parameter types).

Behind a transaction-pooling PgBouncer this needs 1.21+ with ``max_prepared_statements``
(a named statement must reach the server connection it was prepared on).

Around the statement this does what Django's cursor does: the health check, connecting,
database errors as Django's, the query in ``connection.queries`` when Django logs queries
(``CaptureQueriesContext`` counts it). Any other database runs the same SQL on Django's
cursor: the callers write SQL both accept.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psycopg
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

Params = Sequence[Any] | Mapping[str, Any]


def execute_prepared(db: BaseDatabaseWrapper, sql: str, params: Params) -> int:
    """Run ``sql``; its row count."""
    return _run(db, sql, params, lambda cursor: cursor.rowcount)


def fetch_prepared(db: BaseDatabaseWrapper, sql: str, params: Params) -> tuple | None:
    """Run ``sql``; its first row, or None."""
    return _run(db, sql, params, lambda cursor: cursor.fetchone())


def fetch_all_prepared(db: BaseDatabaseWrapper, sql: str, params: Params) -> list[tuple]:
    """Run ``sql``; all its rows."""
    return _run(db, sql, params, lambda cursor: cursor.fetchall())


def _run(db: BaseDatabaseWrapper, sql: str, params: Params, read: Callable[[Any], Any]) -> Any:
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return read(cursor)
    db.close_if_health_check_failed()
    db.ensure_connection()
    if db.connection.prepare_threshold is None:  # Django's "never": psycopg ignores prepare=
        # Only what asks for it (prepare=True): Django's own cursors bind client-side, and
        # those never prepare whatever the threshold.
        db.connection.prepare_threshold = sys.maxsize
    started = time.monotonic()
    with db.wrap_database_errors:
        bound, sql = _cursor(db, sql)
        bound.execute(sql, params, prepare=True)
        result = read(bound)
    if db.queries_logged:
        db.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return result


# Past this many statements on one connection, their cursors are made anew (the callers'
# statements are a handful of fixed texts; this only bounds a mistake).
MAX_STATEMENT_CURSORS = 64


def _cursor(db: BaseDatabaseWrapper, sql: str) -> tuple[psycopg.Cursor, str]:
    """A server-binding cursor for ``sql`` on ``db``'s current connection, and the text to
    run on it. One cursor per statement, kept with the connection's wrapper (one per thread)
    and made again for a new connection: psycopg keeps a cursor's adapters only while the same
    query object runs again on it, and making them anew (for the statements of a launch, one
    after the other) cost as much as the statements' own work in psycopg. So the text run
    is always the one the cursor first ran."""
    held = db.__dict__.get("prepared_statement_cursors")
    if held is None or held[0] is not db.connection or len(held[1]) > MAX_STATEMENT_CURSORS:
        cursors: dict[str, tuple[psycopg.Cursor, str]] = {}
        held = db.__dict__["prepared_statement_cursors"] = (db.connection, cursors)
    kept = held[1].get(sql)
    if kept is None or kept[0].closed:
        kept = held[1][sql] = (psycopg.Cursor(db.connection), sql)
    return kept


# --- rows read by hand, loaded as the ORM loads them ------------------------------------------


def model_from_row(
    db: BaseDatabaseWrapper, model: type[Model], fields: Sequence[Field], values: Iterable[Any]
) -> Any:
    """An instance of ``model`` from a row of ``fields`` read by hand: each value through the
    converters the ORM's compiler applies (SQLite's dates and booleans), the other fields
    deferred, the instance marked as loaded from ``db``."""
    key = (db.alias, tuple(fields))
    if key not in _CONVERTERS:
        _CONVERTERS[key] = _converters(db, key[1])
    converted = []
    for (column, converters), value in zip(_CONVERTERS[key], values, strict=True):
        for converter in converters:
            value = converter(value, column, db)
        converted.append(value)
    return model.from_db(db.alias, [field.attname for field in fields], converted)


# The converters of a database's backend for some fields, found once (they depend only on
# the backend and the fields).
_CONVERTERS: dict[tuple[str, tuple[Field, ...]], list[tuple[Any, list[Callable]]]] = {}


def _converters(
    db: BaseDatabaseWrapper, fields: tuple[Field, ...]
) -> list[tuple[Any, list[Callable]]]:
    columns = [field.get_col(field.model._meta.db_table) for field in fields]
    return [
        (column, db.ops.get_db_converters(column) + column.get_db_converters(db))
        for column in columns
    ]
