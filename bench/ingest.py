"""event_ingest_ratio: the worker's event path itself (FIFO reader, EventSink, its writer)
over its floor, a plain ``COPY`` of the same rows.

The recorded stream (bench/data/events.jsonl.gz, 2,053 events of a 50 x 20 run) is replayed
``COPIES`` times with shifted counters into a fresh Job per run, as the portal's callback
sends it: JSON lines written into the event FIFO (by a thread here), read by
``portal.jobs.fifo.EventFifo`` into ``EventSink.handle``, whose writer thread flushes every
JOB_EVENT_FLUSH_SECONDS with one COPY; the same calls ``portal.jobs.runner.run`` makes.
Rate = events / (start -> sink closed), all rows committed and counted, stream complete.
The floor: the rows that run stored, read back (untimed) and written again into a fresh Job
by psycopg's ``COPY ... FROM STDIN`` on a connection of its own, one transaction, no portal
code; rate = rows / (COPY start -> commit). Runs alternate (portal floor, floor portal, ...);
the figure is the median of the per-pair ratios portal rate / floor rate, the absolute rates
(``event_ingest_rate``: the portal's median) are details. A second, sequential variant (all
handles, then one ``flush()`` in the caller) is reported as a detail, with its split between
converting and writing.
"""

import gc
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from bench import stats
from bench.record import load

# 41,060 events a run, about a second: at 5 copies a run lasted 0.2 s and the pairs of one
# full run spread from 0.53 to 0.78 (scheduling and GC noise, not the code).
COPIES = 20


def _stream(events: list[dict], copies: int) -> list[dict]:
    step = max(e["counter"] for e in events)
    out = []
    for copy in range(copies):
        for event in events:
            shifted = dict(event)
            shifted["counter"] = event["counter"] + copy * step
            out.append(shifted)
    return out


def _fresh_job():
    from portal.jobs.models import Job

    return Job.objects.create(
        playbook="tasks50.yml",
        queue="bench-ingest",
        timeout=3600,
        idle_timeout=900,
        action="jobs.adhoc",
        status="running",
    )


def _stored(job) -> int:
    return job.events.count()


def _lines(stream) -> bytes:
    """The stream as the portal's callback writes it: one JSON line per event, its data last
    (``portal.jobs.fifo.encode_line``), then the end marker (encoding is the callback's cost,
    in ansible-playbook, not measured here)."""
    from portal.jobs.fifo import END_KEY, encode_line

    lines = [encode_line(event) for event in stream] + [json.dumps({END_KEY: len(stream)}).encode()]
    return b"\n".join(lines) + b"\n"


def _write_fifo(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[: 1 << 16]) :]
    finally:
        os.close(fd)


def run_live(stream, data: bytes) -> tuple[float, int]:
    """The whole worker side: FIFO reader -> sink.handle -> writer thread -> COPY."""
    from portal.jobs.events import EventSink, Masker
    from portal.jobs.fifo import EventFifo

    job = _fresh_job()
    sink = EventSink(job, Masker(job.secrets()))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        fifo = EventFifo(Path(scratch) / "events.fifo", sink.handle)
        writer = threading.Thread(target=_write_fifo, args=(fifo.path, data))
        gc.collect()
        started = time.perf_counter()
        sink.start()
        fifo.start()
        writer.start()
        writer.join()
        fifo.close()
        sink.close()
        elapsed = time.perf_counter() - started
    if not fifo.complete or _stored(job) != len(stream):
        raise RuntimeError(
            f"ingest stored {_stored(job)} of {len(stream)} events "
            f"({fifo.problem() if not fifo.complete else 'stream complete'})"
        )
    return elapsed, job.pk


def stored_rows(job_id: int) -> tuple[list[str], list[tuple]]:
    """The job's event rows as COPY's text format gives them (untimed): the floor writes
    exactly these values, with only the job id changed."""
    import psycopg
    from django.db import connection

    from portal.jobs.models import JobEvent

    columns = [f.column for f in JobEvent._meta.concrete_fields if not f.primary_key]
    table = JobEvent._meta.db_table
    select = f"SELECT {', '.join(columns)} FROM {table} WHERE job_id = %s ORDER BY counter"  # noqa: S608
    with psycopg.connect(_conninfo(connection.settings_dict)) as conn:
        cursor = conn.cursor()
        with cursor.copy(f"COPY ({select}) TO STDOUT", [job_id]) as copy:
            rows = list(copy.rows())
    return columns, rows


def _conninfo(db: dict) -> str:
    import psycopg.conninfo

    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=str(db["PORT"]) if db.get("PORT") else None,
    )


def run_floor(columns: list[str], rows: list[tuple]) -> float:
    """Seconds for psycopg's COPY of ``rows`` into a fresh job, committed; no portal code."""
    import psycopg
    from django.db import connection

    from portal.jobs.models import JobEvent

    job_id = str(_fresh_job().pk)
    at = columns.index("job_id")
    rows = [(*row[:at], job_id, *row[at + 1 :]) for row in rows]
    statement = f"COPY {JobEvent._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with psycopg.connect(_conninfo(connection.settings_dict)) as conn:
        gc.collect()
        started = time.perf_counter()
        with conn.cursor().copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
    if JobEvent.objects.filter(job_id=job_id).count() != len(rows):
        raise RuntimeError("the floor's COPY did not store every row")
    return elapsed


def run_sequential(lines: list[bytes]) -> tuple[float, float]:
    """Converting (the line read as the reader reads it, then handled) apart from writing."""
    from portal.jobs.events import EventSink, Masker
    from portal.jobs.fifo import parse_line

    job = _fresh_job()
    sink = EventSink(job, Masker(job.secrets()))
    gc.collect()
    started = time.perf_counter()
    for line in lines:
        sink.handle(parse_line(line))
    converted = time.perf_counter()
    sink.flush()
    written = time.perf_counter()
    if _stored(job) != len(lines):
        raise RuntimeError(f"ingest stored {_stored(job)} of {len(lines)} events")
    return converted - started, written - converted


def pair_order(index: int) -> tuple[str, str]:
    """Pairs alternate their order so drift on the machine hits both sides alike."""
    return ("portal", "floor") if index % 2 == 0 else ("floor", "portal")


def measure(ctx, runs: int = 7, minimum: int = 3) -> dict:
    from django.conf import settings

    events = load()
    stream = _stream(events, COPIES)
    data = _lines(stream)
    run_live(stream[: len(events)], _lines(stream[: len(events)]))  # warm-up
    # The floor's rows: those a portal run stores, so both sides write the same rows.
    columns, rows = stored_rows(run_live(stream, data)[1])
    run_floor(columns, rows[: len(events)])  # the floor's warm-up
    live: list[float] = []
    floor: list[float] = []
    ratios: list[float] = []
    sequential: list[float] = []
    convert: list[float] = []
    write: list[float] = []
    pair_seconds = 15.0  # about what a pair takes on a slow machine, until one is measured
    for index in range(runs):
        if not ctx.another(len(ratios), minimum, 1.3 * pair_seconds, "event ingest"):
            break
        started = time.monotonic()
        for side in pair_order(index):
            if side == "portal":
                live.append(len(stream) / run_live(stream, data)[0])
            else:
                floor.append(len(rows) / run_floor(columns, rows))
        ratios.append(live[-1] / floor[-1])
        to_rows, to_db = run_sequential(data.splitlines()[:-1])
        sequential.append(len(stream) / (to_rows + to_db))
        convert.append(len(stream) / to_rows)
        write.append(len(stream) / to_db)
        pair_seconds = time.monotonic() - started
    return {
        "figures": {"event_ingest_ratio": (round(stats.median(ratios), 3), "x")},
        "details": {
            "event_ingest_ratio": {
                "method": "recorded stream as JSON lines through the event FIFO: reader "
                "thread -> EventSink.handle -> writer thread (COPY), over the floor: "
                "psycopg COPY of the same rows (no portal code); median of per-pair ratios",
                "events_per_run": len(stream),
                "recorded_events": len(events),
                "pairs": len(ratios),
                "ratios": [round(r, 3) for r in ratios],
                "event_ingest_rate": round(stats.median(live)),
                "floor_events_per_s": stats.summary(floor),
                "live_events_per_s": stats.summary(live),
                "sequential_events_per_s": stats.summary(sequential),
                "convert_only_events_per_s": stats.summary(convert),
                "write_only_events_per_s": stats.summary(write),
                "batch": settings.JOB_EVENT_BATCH,
                "flush_seconds": settings.JOB_EVENT_FLUSH_SECONDS,
            }
        },
    }
