"""Checks behind GET /api/health: is the database answering, is the broker reachable."""

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection


def _timed(check: Callable[[], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
        result: dict[str, Any] = {"ok": True}
        if detail:
            result["detail"] = detail
    except Exception as exc:  # a health check reports every failure, whatever its kind
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_broker() -> str:
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.BROKER_HEALTH_TIMEOUT)
        return conn.as_uri()  # without the password


def check_all() -> dict[str, Any]:
    checks = {"database": _timed(check_database), "broker": _timed(check_broker)}
    healthy = all(item["ok"] for item in checks.values())
    return {"status": "ok" if healthy else "unavailable", "checks": checks}
