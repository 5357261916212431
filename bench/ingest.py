"""event_ingest_rate: the worker's event path itself (FIFO reader, EventSink, its writer).

The recorded stream (bench/data/events.jsonl.gz, 2,053 events of a 50 x 20 run) is replayed
``COPIES`` times with shifted counters into a fresh Job per run, as the portal's callback
sends it: JSON lines written into the event FIFO (by a thread here), read by
``portal.jobs.fifo.EventFifo`` into ``EventSink.handle``, whose writer thread flushes every
JOB_EVENT_FLUSH_SECONDS with one COPY; the same calls ``portal.jobs.runner.run`` makes.
Rate = events / (start -> sink closed), all rows committed and counted, stream complete.
A second, sequential variant (all handles, then one ``flush()`` in the caller) is reported as
a detail, with its split between converting and writing.
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

COPIES = 5


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
    """The stream as the portal's callback writes it: one JSON line per event, then the
    end marker (encoding is the callback's cost, in ansible-playbook, not measured here)."""
    from portal.jobs.fifo import END_KEY

    lines = [json.dumps(event) for event in stream] + [json.dumps({END_KEY: len(stream)})]
    return ("\n".join(lines) + "\n").encode()


def _write_fifo(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[: 1 << 16]) :]
    finally:
        os.close(fd)


def run_live(stream, data: bytes) -> float:
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
    return elapsed


def run_sequential(stream) -> tuple[float, float]:
    from portal.jobs.events import EventSink, Masker

    job = _fresh_job()
    sink = EventSink(job, Masker(job.secrets()))
    gc.collect()
    started = time.perf_counter()
    for event in stream:
        sink.handle(event)
    converted = time.perf_counter()
    sink.flush()
    written = time.perf_counter()
    if _stored(job) != len(stream):
        raise RuntimeError(f"ingest stored {_stored(job)} of {len(stream)} events")
    return converted - started, written - converted


def measure(ctx, runs: int = 7) -> dict:
    from django.conf import settings

    events = load()
    stream = _stream(events, COPIES)
    data = _lines(stream)
    run_live(stream[: len(events)], _lines(stream[: len(events)]))  # warm-up
    live, sequential, convert, write = [], [], [], []
    for _ in range(runs):
        if not ctx.another(len(live), 3, 10, "event ingest"):
            break
        elapsed = run_live(stream, data)
        live.append(len(stream) / elapsed)
        to_rows, to_db = run_sequential(stream)
        sequential.append(len(stream) / (to_rows + to_db))
        convert.append(len(stream) / to_rows)
        write.append(len(stream) / to_db)
    return {
        "figures": {"event_ingest_rate": (round(stats.median(live)), "events/s")},
        "details": {
            "event_ingest_rate": {
                "method": "recorded stream as JSON lines through the event FIFO: reader "
                "thread -> EventSink.handle -> writer thread (COPY)",
                "events_per_run": len(stream),
                "recorded_events": len(events),
                "runs": len(live),
                "live_events_per_s": stats.summary(live),
                "sequential_events_per_s": stats.summary(sequential),
                "convert_only_events_per_s": stats.summary(convert),
                "write_only_events_per_s": stats.summary(write),
                "batch": settings.JOB_EVENT_BATCH,
                "flush_seconds": settings.JOB_EVENT_FLUSH_SECONDS,
            }
        },
    }
