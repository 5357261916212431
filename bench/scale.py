"""The growth figures (#18): a separate group, ``python -m bench --only scale``.

Requests whose cost must not grow with the job history, timed side by side against two
histories in one database, filled with bulk SQL (``INSERT … SELECT generate_series``):
``SMALL`` jobs in ``public`` and ``LARGE`` in the schema ``LARGE_SCHEMA`` (an empty copy of
each history table), served by a second web whose connections put that schema first on
their ``search_path``; users, tokens, nodes and every other table are the same rows for
both. Each request alternates between the two (small large, large small, ...); each figure
is the median of the per-pair ratios ms at ``LARGE`` / ms at ``SMALL`` (target ≤ 1.5); the
absolute medians are details.

- ``growth_metrics``: ``GET /metrics`` (Bearer token).
- ``growth_jobs_api_deep_page``: ``GET /api/jobs/`` near the end of the history: the cursor
  of a job ``DEEP_FROM_END`` rows from the oldest when the list pages by cursor, else
  (the code before #18) the last page but one by ``?page=N``.
- ``growth_admin_job_list``: ``GET /admin/jobs/job/`` as a superuser (a session made in the
  database, no login form).
- ``growth_job_events``: ``GET /api/jobs/{id}/events/`` of a job with ``EVENTS_PER_JOB``
  events.

Both histories end a day before the run, jobs ``SPACING_SECONDS`` apart, most ended
(successful or failed, with start and finish times, host summary and event lag), the newest
``ACTIVE`` pending: the large one only reaches further back. ``EVENTS_PER_JOB`` events are
made for the newest ``SMALL_WITH_EVENTS`` jobs of the small history and ``LARGE_WITH_EVENTS``
of the large one (the event table grows tenfold too). Each request is sent ``WARM_UPS`` times to
each web unmeasured (warm caches), then in ``REPEATS`` pairs. Details also carry the table sizes
(``pg_total_relation_size``) and the bytes per job and per event.
"""

import base64
import contextlib
import http.client
import importlib
import os
import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from bench import stats

SMALL = 10_000
LARGE = 1_000_000
SMALL_WITH_EVENTS = 1_000
LARGE_WITH_EVENTS = 10_000
EVENTS_PER_JOB = 40
SPACING_SECONDS = 30
DEEP_FROM_END = 100
REPEATS = 15  # pairs of each request
# Unmeasured requests to each web first: each on a fresh connection, which any of gunicorn's
# processes may accept, so one was not enough to reach both (the first pairs were 0.15-6x).
WARM_UPS = 4
LARGE_SCHEMA = "bench_large_history"
ACTIVE = 20  # the newest jobs of a fill are still pending: as many at 1M as at 10k
PLAYBOOKS = ("echo.yml", "workspace_create.yml", "lab_provision.yml", "node_probe.yml",
             "installer_run.yml", "cluster_node_ready.yml")  # fmt: skip
FIGURES = {
    "growth_metrics": "metrics",
    "growth_jobs_api_deep_page": "jobs_api_deep_page",
    "growth_admin_job_list": "admin_job_list",
    "growth_job_events": "job_events",
}


# --- filling ------------------------------------------------------------------------------


def _job_template() -> tuple[list[str], list]:
    from bench.monitoring import _template_values
    from portal.jobs.models import Job

    skip = {"id", "playbook", "action", "queue", "status", "rc", "created_at", "started_at",
            "finished_at", "dispatched_at", "host_summary", "event_count", "event_lag_p95_ms",
            "timeout", "idle_timeout"}  # fmt: skip
    return _template_values(Job(), skip)


def fill_jobs(first: int, last: int, start) -> None:
    """Jobs number ``first``..``last`` (``g``), created ``start + g x SPACING_SECONDS``."""
    from django.db import connection, transaction

    from portal.jobs.models import Job

    columns, values = _job_template()
    marks = ", ".join(["%s"] * len(values))
    playbooks = "(ARRAY[" + ", ".join(f"'{p}'" for p in PLAYBOOKS) + "])"
    sql = f"""
        INSERT INTO {Job._meta.db_table} (playbook, action, queue, status, rc, created_at,
            dispatched_at, started_at, finished_at, host_summary, event_count,
            event_lag_p95_ms, timeout, idle_timeout, {", ".join(f'"{c}"' for c in columns)})
        SELECT {playbooks}[1 + mod(g, {len(PLAYBOOKS)})], 'jobs.adhoc', 'default',
            CASE WHEN g > {last - ACTIVE} THEN 'pending'
                 WHEN mod(g, 10) = 0 THEN 'failed' ELSE 'successful' END,
            CASE WHEN g > {last - ACTIVE} THEN NULL WHEN mod(g, 10) = 0 THEN 2 ELSE 0 END,
            t, t, CASE WHEN g > {last - ACTIVE} THEN NULL ELSE t + interval '1 second' END,
            CASE WHEN g > {last - ACTIVE} THEN NULL
                 ELSE t + interval '1 second' * (2 + mod(g, 700)) END,
            '{{"bench-01": {{"ok": 3, "changed": 1}}}}'::jsonb, {EVENTS_PER_JOB},
            CASE WHEN g > {last - ACTIVE} THEN NULL ELSE 50 + mod(g, 100) END,
            300, 300, {marks}
        FROM (SELECT g, %s::timestamptz + interval '{SPACING_SECONDS} seconds' * g AS t
              FROM generate_series(%s, %s) g) s
    """  # noqa: S608 - no user input: constants of this module
    with transaction.atomic(), connection.cursor() as cursor:
        # The jobs active at the last fill have ended since: active jobs do not pile up.
        cursor.execute(
            f"UPDATE {Job._meta.db_table} SET status = 'successful', rc = 0, "  # noqa: S608
            "started_at = created_at, finished_at = created_at + interval '5 seconds', "
            "event_lag_p95_ms = 80 WHERE status = 'pending'"
        )
        cursor.execute(sql, [*values, start, first, last])


def fill_events(jobs: int) -> None:
    """``EVENTS_PER_JOB`` events for each of the newest ``jobs`` jobs that have none."""
    from django.db import connection, transaction

    from portal.jobs.models import Job, JobEvent

    sql = f"""
        INSERT INTO {JobEvent._meta.db_table} (job_id, counter, event, uuid, parent_uuid,
            host, task, play, role, changed, failed, stdout, start_line, end_line, created,
            event_data)
        SELECT j.id, c, 'runner_on_ok', md5(j.id || '-' || c), md5(j.id::text), 'bench-01',
            'Ensure the step ' || c || ' of the play is done', 'Bench play', 'bench_role',
            mod(c, 3) = 0, false,
            'ok: [bench-01] => {{"changed": false, "msg": "step ' || c || ' done"}}',
            c, c + 1, j.created_at + interval '10 milliseconds' * c,
            jsonb_build_object('host', 'bench-01', 'task', 'step ' || c, 'res',
                jsonb_build_object('changed', false, 'msg', 'step ' || c || ' done'),
                'task_path', '/work/playbooks/bench.yml:' || c, 'duration', 0.01)
        FROM (SELECT id, created_at FROM {Job._meta.db_table} j
              WHERE NOT EXISTS (SELECT 1 FROM {JobEvent._meta.db_table} e WHERE e.job_id = j.id)
              ORDER BY created_at DESC LIMIT %s) j
        CROSS JOIN generate_series(1, {EVENTS_PER_JOB}) c
    """  # noqa: S608 - no user input: constants of this module
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [jobs])


def settle() -> None:
    """After a bulk fill: statistics, and whatever the product derives from jobs in bulk
    (the tally of ended jobs, rebuilt as its migration does; absent before #18)."""
    from django.db import connection

    from portal.jobs import models

    if hasattr(models, "JobTally"):
        importlib.import_module("portal.jobs.tally").rebuild(models.Job, models.JobTally)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE jobs_job")
        cursor.execute("VACUUM ANALYZE jobs_jobevent")
        cursor.execute("ANALYZE")


def checkpoint() -> bool:
    """After the fills, before any request is timed. The 1M fill writes about 550 MB of WAL,
    half of ``max_wal_size``: without this the checkpointer started one of its own, spread
    over the next 20-60 s, while the requests were timed. Whether it was taken; a role
    without ``pg_checkpoint`` leaves it to the checkpointer."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:
        return False
    return True


def checkpoints_so_far() -> int | None:
    """The server's checkpoints since its statistics were reset (PostgreSQL 15 and 16;
    None where the view has moved): one that starts while requests are timed shows here."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
            return cursor.fetchone()[0]
    except DatabaseError:
        return None


def sizes() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('jobs_job'), pg_total_relation_size('jobs_jobevent'),"
            " (SELECT count(*) FROM jobs_job), (SELECT count(*) FROM jobs_jobevent)"
        )
        job_bytes, event_bytes, jobs, events = cursor.fetchone()
    return {
        "jobs": jobs,
        "events": events,
        "jobs_table_bytes": job_bytes,
        "events_table_bytes": event_bytes,
        "bytes_per_job": round(job_bytes / jobs) if jobs else None,
        "bytes_per_event": round(event_bytes / events) if events else None,
    }


# --- requests -----------------------------------------------------------------------------


def admin_session_cookie() -> str:
    """A superuser's session, written through Django's session store (no login form, no
    lockout counting): the cookie the admin list is requested with."""
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
        load_backend,
    )
    from django.utils.module_loading import import_string

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first()
    if user is None:
        user = user_model.objects.create_superuser("bench-admin", "admin@bench.invalid", None)
    store = import_string(settings.SESSION_ENGINE + ".SessionStore")()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = next(  # axes' backend only counts logins; it finds no user
        path for path in settings.AUTHENTICATION_BACKENDS if hasattr(load_backend(path), "get_user")
    )
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def deep_page_path(port: int, token: str) -> str:
    """The jobs list ``DEEP_FROM_END`` jobs before its end: by cursor if the list pages by
    cursor, else the last page but one. The bench's connection reads the history the web at
    ``port`` serves (``history``)."""
    from bench.client import Api
    from portal.jobs.models import Job

    api = Api(port, token)
    try:
        status, first = api.request("GET", "/api/jobs/")
    finally:
        api.close()
    if status != 200:
        raise RuntimeError(f"GET /api/jobs/ -> {status}: {str(first)[:300]}")
    if "cursor=" in (first.get("next") or ""):
        oldest = Job.objects.order_by("created_at", "id").values_list("created_at", flat=True)
        position = oldest[DEEP_FROM_END]
        token = base64.b64encode(urlencode({"p": position.isoformat()}).encode()).decode()
        return "/api/jobs/?" + urlencode({"cursor": token})
    per_page = len(first["results"])
    last_page = -(-first["count"] // per_page)
    return f"/api/jobs/?page={max(1, last_page - 1)}"


def timed_get(port: int, path: str, headers: dict) -> tuple[float, int, int]:
    """(ms, status, body bytes) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        begun = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - begun) * 1000
    finally:
        conn.close()
    return elapsed, response.status, len(body)


def requests_to_time(port: int, token: str, metrics_token: str, cookie: str) -> dict:
    """Each request's path and headers for the history the web at ``port`` serves."""
    from portal.jobs.models import Job

    api = {"Authorization": f"Token {token}", "Accept": "application/json"}
    with_events = (
        Job.objects.filter(event_count=EVENTS_PER_JOB, events__counter=1)
        .order_by("-created_at")
        .values_list("id", flat=True)
        .first()
    )
    return {
        "metrics": ("/metrics", {"Authorization": f"Bearer {metrics_token}"}),
        "jobs_api_deep_page": (deep_page_path(port, token), api),
        "admin_job_list": ("/admin/jobs/job/", {"Cookie": cookie}),
        "job_events": (f"/api/jobs/{with_events}/events/", api),
    }


def _get_ok(port: int, path: str, headers: dict) -> tuple[float, int]:
    ms, status, size = timed_get(port, path, headers)
    if status != 200:
        raise RuntimeError(f"GET {path} on :{port} -> {status}")
    return round(ms, 1), size


def time_in_pairs(sides: dict[int, dict], pairs: int) -> dict[str, dict]:
    """Each request on both histories, alternately (small large, large small, ...) after
    ``WARM_UPS`` unmeasured requests on each: per pair, ms at LARGE / ms at SMALL.
    ``sides``: {size: (port, the requests' paths and headers there)}."""
    timed = {}
    for name in sides[SMALL][1]:
        runs: dict[int, list[float]] = {SMALL: [], LARGE: []}
        body_bytes = {}
        for size in (SMALL, LARGE):  # warm-up, not kept
            port, wanted = sides[size]
            for _ in range(WARM_UPS):
                _get_ok(port, *wanted[name])
        for i in range(pairs):
            for size in (SMALL, LARGE) if i % 2 == 0 else (LARGE, SMALL):
                port, wanted = sides[size]
                ms, body_bytes[size] = _get_ok(port, *wanted[name])
                runs[size].append(ms)
        ratios = [large / small for small, large in zip(runs[SMALL], runs[LARGE], strict=True)]
        timed[name] = {
            "ratios": [round(r, 3) for r in ratios],
            "median_interval_90": [round(r, 3) for r in stats.median_interval(ratios) or ()],
            **{
                f"{size}": {
                    "path": urlsplit(sides[size][1][name][0]).path,
                    "median_ms": stats.median(runs[size]),
                    "min_ms": min(runs[size]),
                    "runs_ms": runs[size],
                    "bytes": body_bytes[size],
                }
                for size in (SMALL, LARGE)
            },
        }
    return timed


# --- the two histories ----------------------------------------------------------------------


def history_tables() -> list[str]:
    """The tables that grow with the job history (what the large history has of its own)."""
    from portal.jobs import models

    tables = [models.Job, models.JobEvent, models.Job.nodes.through]
    if hasattr(models, "JobTally"):  # absent before #18
        tables.append(models.JobTally)
    return [model._meta.db_table for model in tables]


def make_large_history_schema() -> None:
    """``LARGE_SCHEMA``: an empty copy of each history table (columns, defaults, identity,
    indexes, checks). A web whose connections put it first on their ``search_path`` serves
    the same portal, users and nodes with this history instead of ``public``'s."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {LARGE_SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {LARGE_SCHEMA}")
        for table in history_tables():
            cursor.execute(
                f"CREATE TABLE {LARGE_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
            )


def drop_large_history_schema() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {LARGE_SCHEMA} CASCADE")


@contextlib.contextmanager
def history(size: int):
    """The bench's own connection reads and writes the history of ``size`` jobs."""
    from django.db import connection

    if size == SMALL:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET search_path TO {LARGE_SCHEMA}, public")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET search_path")


def fill(size: int, with_events: int) -> dict:
    """``size`` jobs ending a day before now, ``SPACING_SECONDS`` apart: both histories have
    the same recent past, the large one reaches further back. Their sizes on disk."""
    from django.utils import timezone

    start = timezone.now() - timedelta(days=1) - timedelta(seconds=SPACING_SECONDS * size)
    with history(size):
        fill_jobs(1, size, start)
        fill_events(with_events)
        settle()
        return sizes()


def start_large_history_web(ctx):
    """A second web like the bench's, its database connections on ``LARGE_SCHEMA`` first
    (libpq's ``PGOPTIONS``)."""
    from bench import stack

    env = {**ctx.env, "PGOPTIONS": f"-c search_path={LARGE_SCHEMA},public"}
    web, port = stack.start_web(env, ctx.work / "logs", name="web-large-history")
    stack.wait_web(web, port)
    return web, port


def measure(ctx, repeats: int = REPEATS) -> dict:
    from django.db import DatabaseError, connection

    metrics_token = ctx.env.get("METRICS_TOKEN")
    if not metrics_token:
        raise RuntimeError("the bench's web has no METRICS_TOKEN (bench.stack.stack_env)")
    cookie = admin_session_cookie()
    details: dict = {"method": "per request, the median of per-pair ratios ms at LARGE / ms "
                     "at SMALL, pairs alternating, each GET on a fresh connection after a "
                     "warm-up; the two histories side by side in one database (the large one "
                     f"in the schema {LARGE_SCHEMA}, served by a second web)",
                     "pairs": repeats}  # fmt: skip
    ctx.require(90, "filling the two histories")
    make_large_history_schema()
    large_web = None
    try:
        for size, with_events in ((SMALL, SMALL_WITH_EVENTS), (LARGE, LARGE_WITH_EVENTS)):
            began = time.monotonic()
            details[f"size_{size}"] = fill(size, with_events)
            details[f"fill_{size}_seconds"] = round(time.monotonic() - began, 1)
        details["checkpoint_after_fills"] = checkpoint()
        connection.close()
        large_web, large_port = start_large_history_web(ctx)
        sides = {}
        for size, port in ((SMALL, ctx.port), (LARGE, large_port)):
            with history(size):
                sides[size] = (port, requests_to_time(port, ctx.fixtures.token, metrics_token,
                                                      cookie))  # fmt: skip
        details["load_before"] = os.getloadavg()[0]
        before = checkpoints_so_far()
        timed = time_in_pairs(sides, repeats)
        after = checkpoints_so_far()
        details["load_after"] = os.getloadavg()[0]
        details["checkpoints_during_requests"] = (
            after - before if before is not None and after is not None else None
        )
    finally:
        if large_web is not None:
            large_web.stop()
        with contextlib.suppress(DatabaseError):  # not to hide why it failed (dropped anyway
            drop_large_history_schema()  # by the next run's reset of the whole database)
    details["requests"] = timed
    figures = {}
    for figure, request in FIGURES.items():
        figures[figure] = (round(stats.median(timed[request]["ratios"]), 2), "x")
        details[figure] = {f"{size}_ms": timed[request][f"{size}"]["median_ms"]
                           for size in (SMALL, LARGE)}  # fmt: skip
    return {"figures": figures, "details": {"scale": details}}
