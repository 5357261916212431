"""GET /api/jobs/{id}/stream/: Server-Sent Events, resumable with Last-Event-ID, live."""

import json
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from portal.core.tenancy import MembershipRole
from portal.jobs import actions
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from portal.jobs.stream import FIELDS
from tests.factories import AdminFactory, CustomerFactory, MembershipFactory, UserFactory
from tests.helpers import playbook_span, stubbed_broker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_stream(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.JOB_STREAM_POLL_SECONDS = 0.02
    settings.JOB_STREAM_MAX_SECONDS = 20  # a bound: no test may hang on a stream


@pytest.fixture
def staff_api(user_api):
    return user_api(AdminFactory())


# --- helpers ------------------------------------------------------------------------------


def launch(**kwargs) -> Job:
    with stubbed_broker():
        return actions.launch(**{"playbook": "echo.yml", **kwargs})


def set_status(job: Job, status: str) -> Job:
    Job.objects.filter(pk=job.pk).update(status=status)
    job.refresh_from_db()
    return job


def add_event(job: Job, counter: int, **fields) -> JobEvent:
    values = {
        "event": "runner_on_ok",
        "host": "local-1",
        "stdout": f"ok {counter}",
        "created": timezone.now(),
        **fields,
    }
    return JobEvent.objects.create(job=job, counter=counter, **values)


def parse(block: str) -> dict:
    frame = {}
    for line in block.split("\n"):
        if line.startswith(":"):
            frame.setdefault("comment", []).append(line[1:].strip())
            continue
        key, _, value = line.partition(": ")
        frame[key] = value
    if "data" in frame:
        frame["data"] = json.loads(frame["data"])
    return frame


def iter_frames(response):
    """Frames as they arrive: the response's iterator is consumed lazily."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/event-stream")
    buffer = ""
    for chunk in response.streaming_content:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield parse(block)
    assert buffer == "", f"incomplete frame at the end: {buffer!r}"


def events_and_end(frames) -> tuple[list[dict], dict | None]:
    frames = list(frames)
    assert frames[0] == {"retry": "1000"}
    events = [f for f in frames if f.get("event") == "job_event"]
    ends = [f for f in frames if f.get("event") == "end"]
    assert len(ends) <= 1 and (not ends or frames[-1] is ends[0]), "end is the last frame"
    for frame in events:
        assert frame["id"] == str(frame["data"]["counter"])
    return events, (ends[0] if ends else None)


def stream(client, job: Job, **extra):
    return client.get(f"/api/jobs/{job.pk}/stream/", **extra)


# --- finished jobs ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stream_of_a_finished_real_run(local_node, staff_api):
    job = launch(nodes=[local_node], extra_vars={"message": "hello-stream"})
    actions.execute(job.pk, job.signature, worker="test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason

    response = stream(staff_api, job)
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    events, end = events_and_end(iter_frames(response))
    assert [e["data"]["counter"] for e in events] == list(range(1, job.event_count + 1))
    assert all(set(e["data"]) == set(FIELDS) for e in events)
    names = playbook_span([e["data"]["event"] for e in events])
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats", [
        (e["data"]["event"], e["data"]["stdout"]) for e in events
    ]
    assert any("message=hello-stream" in e["data"]["stdout"] for e in events)
    assert end == {"event": "end", "data": {"status": "successful"}}  # no id: not resumable


def test_stream_frames_are_well_formed(staff_api, local_node):
    job = set_status(launch(nodes=[local_node]), JobStatus.FAILED)
    add_event(job, 1, task="Fail", failed=True, stdout="fatal: [local-1]: FAILED!\nline 2")
    body = b"".join(stream(staff_api, job).streaming_content).decode()
    first, rest = body.split("\n\n", 1)
    assert first == "retry: 1000"
    head, data, end = rest.split("\n", 2)
    assert head == "id: 1" and data == "event: job_event"
    event = json.loads(end.split("\n\n")[0].removeprefix("data: "))
    # A multi-line stdout stays on one data line (JSON-escaped), so the frame is intact.
    assert event["stdout"] == "fatal: [local-1]: FAILED!\nline 2"
    assert event["failed"] is True and event["task"] == "Fail" and event["host"] == "local-1"
    assert body.endswith('event: end\ndata: {"status": "failed"}\n\n')


def test_stream_without_events_just_ends(staff_api, local_node):
    job = launch(nodes=[local_node])
    actions.cancel(job)
    events, end = events_and_end(iter_frames(stream(staff_api, job)))
    assert events == [] and end["data"] == {"status": "canceled"}


def test_last_event_id_resumes_after_that_event(staff_api, local_node):
    job = set_status(launch(nodes=[local_node]), JobStatus.SUCCESSFUL)
    for counter in range(1, 7):
        add_event(job, counter)

    def counters(**extra):
        events, end = events_and_end(iter_frames(stream(staff_api, job, **extra)))
        assert end["data"] == {"status": "successful"}
        return [int(e["id"]) for e in events]

    assert counters() == [1, 2, 3, 4, 5, 6]
    assert counters(HTTP_LAST_EVENT_ID="4") == [5, 6]
    assert counters(HTTP_LAST_EVENT_ID="6") == []
    assert counters(HTTP_LAST_EVENT_ID="99999999999999999999") == []  # beyond any bigint
    assert counters(QUERY_STRING="after=2") == [3, 4, 5, 6]
    # The browser's Last-Event-ID (a reconnect) wins over the URL the stream was opened with.
    assert counters(QUERY_STRING="after=2", HTTP_LAST_EVENT_ID="5") == [6]
    # An id that is not a counter starts from the beginning rather than failing.
    for garbage in ("abc", "-3", "²"):
        assert counters(HTTP_LAST_EVENT_ID=garbage) == [1, 2, 3, 4, 5, 6]


def test_stream_pages_through_many_events(staff_api, local_node):
    job = set_status(launch(nodes=[local_node]), JobStatus.SUCCESSFUL)
    JobEvent.objects.bulk_create(
        JobEvent(job=job, counter=n, event="verbose", created=timezone.now())
        for n in range(1, 1203)  # more than one 500-event batch
    )
    events, end = events_and_end(iter_frames(stream(staff_api, job)))
    assert [int(e["id"]) for e in events] == list(range(1, 1203))
    assert end["data"]["status"] == "successful"


# --- who may stream -----------------------------------------------------------------------


def test_stream_follows_job_visibility(user_api, local_node):
    customer, other = CustomerFactory(), CustomerFactory()
    job = set_status(launch(nodes=[local_node], customer=customer), JobStatus.SUCCESSFUL)
    add_event(job, 1)
    member = MembershipFactory(customer=customer, role=MembershipRole.MEMBER).user
    events, _ = events_and_end(iter_frames(stream(user_api(member), job)))
    assert len(events) == 1

    stranger = MembershipFactory(customer=other).user
    for accept in ({}, {"HTTP_ACCEPT": "text/event-stream"}, {"HTTP_ACCEPT": "application/json"}):
        response = stream(user_api(stranger), job, **accept)
        assert response.status_code == 404
        assert not response.streaming
        body = json.loads(response.content)  # a JSON error body, whatever was accepted
        assert body["status"] == 404 and body["code"] == "not_found"
    assert stream(user_api(UserFactory()), job).status_code == 404


def test_stream_needs_a_login(api, local_node):
    job = set_status(launch(nodes=[local_node]), JobStatus.SUCCESSFUL)
    response = stream(api, job)
    assert response.status_code in (401, 403)
    assert json.loads(response.content)["status"] == response.status_code


# --- live jobs (the stream polls: transactional database, other connections write) --------


@pytest.mark.django_db(transaction=True)
def test_events_added_while_streaming_appear_then_the_stream_ends(staff_api, local_node):
    job = set_status(launch(nodes=[local_node]), JobStatus.RUNNING)
    add_event(job, 1)
    streaming = threading.Event()
    errors = []

    def worker():  # what the runner's event writer and the worker do, on their own connection
        try:
            assert streaming.wait(10), "the stream never sent the first event"
            for counter in (2, 3, 4):
                time.sleep(0.05)  # longer than a poll: the stream is idle in between
                add_event(job, counter)
            time.sleep(0.05)
            Job.objects.get(pk=job.pk).finish(JobStatus.SUCCESSFUL, rc=0, event_count=4)
        except Exception as exc:  # surfaced in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    frames = []
    try:
        for frame in iter_frames(stream(staff_api, job)):
            frames.append(frame)
            if frame.get("id") == "1":
                streaming.set()
    finally:
        streaming.set()
        thread.join(timeout=15)
    assert not thread.is_alive() and not errors, errors
    events, end = events_and_end(frames)
    assert [int(e["id"]) for e in events] == [1, 2, 3, 4]
    assert end["data"] == {"status": "successful"}  # ended with the job, not at its bound


@pytest.mark.django_db(transaction=True)
def test_stream_of_a_real_run_in_progress(local_node, staff_api, settings):
    settings.JOB_STREAM_MAX_SECONDS = 120  # the whole real run, on a busy machine too
    job = launch(nodes=[local_node], playbook="many.yml", extra_vars={"steps": 10})
    errors = []

    def worker():
        try:
            actions.execute(job.pk, job.signature, worker="test-worker")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        events, end = events_and_end(iter_frames(stream(staff_api, job)))
    finally:
        thread.join(timeout=120)
    assert not errors, errors
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    assert [int(e["id"]) for e in events] == list(range(1, job.event_count + 1))
    assert end["data"] == {"status": "successful"}


@pytest.mark.django_db(transaction=True)
def test_stream_stops_at_its_max_duration(staff_api, local_node, settings):
    settings.JOB_STREAM_MAX_SECONDS = 0.3
    job = set_status(launch(nodes=[local_node]), JobStatus.RUNNING)
    add_event(job, 1)
    started = time.monotonic()
    frames = list(iter_frames(stream(staff_api, job)))
    events, end = events_and_end(frames)
    # No "end": the job has not ended; the browser reconnects with Last-Event-ID: 1.
    assert [e["id"] for e in events] == ["1"] and end is None
    assert time.monotonic() - started >= 0.3  # it held the stream open until its max duration


@pytest.mark.django_db(transaction=True)
def test_stream_stops_when_the_job_is_deleted(staff_api, local_node, monkeypatch):
    job = set_status(launch(nodes=[local_node]), JobStatus.RUNNING)
    frames = iter_frames(stream(staff_api, job))
    assert next(frames) == {"retry": "1000"}
    Job.objects.filter(pk=job.pk).delete()
    polls = []
    monkeypatch.setattr(time, "sleep", polls.append)
    assert list(frames) == []
    assert polls == []  # it ended at once instead of polling until its max duration


def test_stream_created_is_written_as_the_rest_api_writes_it(staff_api, local_node):
    # Issue #19: the stream wrote "2026-01-02 03:04:05.123456+00:00" (str of a datetime),
    # the REST API "2026-01-02T03:04:05.123456Z".
    job = set_status(launch(nodes=[local_node]), JobStatus.SUCCESSFUL)
    add_event(job, 1)
    events, _ = events_and_end(iter_frames(stream(staff_api, job)))
    rest = staff_api.get(f"/api/jobs/{job.pk}/events/").json()["results"]
    assert events[0]["data"]["created"] == rest[0]["created"]
    assert "T" in rest[0]["created"]
