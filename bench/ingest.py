"""event_ingest_rate: the event path itself (EventSink.handle + its writer), no ansible.

The recorded stream (bench/data/events.jsonl.gz, 2,053 events of a 50 x 20 run) is replayed
``COPIES`` times with shifted counters into a fresh Job per run, through the same calls
``portal.jobs.runner.run`` makes: ``sink.start()``, ``sink.handle(event)`` for every event,
``sink.close()`` (the writer thread flushes every JOB_EVENT_FLUSH_SECONDS; close stores the
rest). Rate = events / (first handle -> close returned), all rows committed and counted.
A second, sequential variant (all handles, then one ``flush()`` in the caller) is reported as
a detail, with its split between converting and writing.
"""

import gc
import time

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

    return Job.objects.create(playbook="tasks50.yml", queue="bench-ingest", timeout=3600,
                              idle_timeout=900, action="jobs.adhoc", status="running")


def _stored(job) -> int:
    return job.events.count()


def run_live(stream) -> float:
    from portal.jobs.events import EventSink, Masker

    job = _fresh_job()
    sink = EventSink(job, Masker(job.secrets()))
    gc.collect()
    started = time.perf_counter()
    sink.start()
    for event in stream:
        sink.handle(event)
    sink.close()
    elapsed = time.perf_counter() - started
    if _stored(job) != len(stream):
        raise RuntimeError(f"ingest stored {_stored(job)} of {len(stream)} events")
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
    run_live(stream[: len(events)])  # warm-up: connection, imports, caches
    live, sequential, convert, write = [], [], [], []
    for _ in range(runs):
        ctx.require(10, "event ingest")
        elapsed = run_live(stream)
        live.append(len(stream) / elapsed)
        to_rows, to_db = run_sequential(stream)
        sequential.append(len(stream) / (to_rows + to_db))
        convert.append(len(stream) / to_rows)
        write.append(len(stream) / to_db)
    return {
        "figures": {"event_ingest_rate": (round(stats.median(live)), "events/s")},
        "details": {
            "event_ingest_rate": {
                "method": "EventSink start/handle/close (writer thread), recorded stream",
                "events_per_run": len(stream), "recorded_events": len(events), "runs": runs,
                "live_events_per_s": stats.summary(live),
                "sequential_events_per_s": stats.summary(sequential),
                "convert_only_events_per_s": stats.summary(convert),
                "write_only_events_per_s": stats.summary(write),
                "batch": settings.JOB_EVENT_BATCH,
                "flush_seconds": settings.JOB_EVENT_FLUSH_SECONDS,
            }
        },
    }
