"""The sink stores the callback's lines (data kept as JSON text) exactly as it stores
ansible-runner's event dicts, and a burst is written before the writer's next tick."""

import time

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.record import load
from portal.jobs.events import EventSink, Masker, write_rows
from portal.jobs.fifo import encode_line, parse_line
from portal.jobs.models import Job, JobEvent

pytestmark = pytest.mark.django_db(transaction=True)

STORED = ("counter", "event", "uuid", "parent_uuid", "host", "task", "play", "role")
FLAGS = ("changed", "failed", "stdout", "start_line", "end_line", "created", "event_data")


def _job() -> Job:
    return Job.objects.create(
        playbook="ping.yml", queue="q", timeout=60, idle_timeout=60, status="running"
    )


def _store(events, secrets=None) -> list[tuple]:
    job = _job()
    sink = EventSink(job, Masker(secrets or {}))
    sink.start()
    for event in events:
        sink.handle(event)
    sink.close()
    return list(job.events.order_by("counter").values_list(*STORED, *FLAGS)), sink.summary


def test_lines_and_dicts_store_the_same_rows():
    recorded = load()  # a real 50 x 20 run's events, every kind it has
    as_dicts, summary = _store([dict(event) for event in recorded], {"pw": "step 07 on"})
    lines = [parse_line(encode_line(dict(event))) for event in recorded]
    as_lines, line_summary = _store(lines, {"pw": "step 07 on"})
    assert len(as_lines) == len(as_dicts) == len(recorded)
    assert as_lines == as_dicts
    assert line_summary == summary and summary  # the stats' data is read either way
    assert not any("step 07 on" in str(row) for row in as_lines)  # masked in both


def test_a_burst_is_stored_before_the_next_tick(settings):
    settings.JOB_EVENT_FLUSH_SECONDS = 60
    settings.JOB_EVENT_BATCH = 50
    job = _job()
    sink = EventSink(job, Masker({}))
    sink.start()
    try:
        for counter in range(10):  # batch // 5: the writer is woken at once
            sink.handle({"event": "verbose", "uuid": f"u{counter}", "stdout": "x\n"})
        deadline = time.monotonic() + 20
        while JobEvent.objects.filter(job=job).count() < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert JobEvent.objects.filter(job=job).count() == 10
    finally:
        sink.close()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the COPY path")
def test_a_flush_is_one_copy_that_stores_all_its_rows_or_none():

    job = _job()
    sink = EventSink(job, Masker({}))
    rows = [sink._row({"event": "verbose", "counter": n, "uuid": f"u{n}"}) for n in (1, 2)]
    with CaptureQueriesContext(connection) as queries:
        write_rows(rows)
    assert [query["sql"].split()[0] for query in queries] == ["COPY"]  # no BEGIN, no COMMIT
    assert job.events.count() == 2
    third = sink._row({"event": "verbose", "counter": 3, "uuid": "u3"})
    with pytest.raises(psycopg.IntegrityError):  # counter 2 again: the COPY fails whole
        write_rows([third, rows[1]])
    assert sorted(job.events.values_list("counter", flat=True)) == [1, 2]
