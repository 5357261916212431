"""The event transport: the portal's callback sends events over a FIFO; the sink numbers
and stores every one, and a lost event makes the job an error rather than a silent gap."""

import gc
import importlib.util
import itertools
import json
import os
import select
import sys
import threading
from datetime import UTC, date, datetime, time
from pathlib import Path
from uuid import RFC_4122, UUID

import pytest

from portal.jobs import callback_plugin, runner
from portal.jobs import fifo as fifo_module
from portal.jobs.choices import JobStatus
from portal.jobs.events import EncodedData
from tests.jobs.test_runner import run_now

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fifos(monkeypatch):
    """Every EventFifo the runner makes, and what its run left in the artifacts dir."""
    made, leftovers = [], []
    real_init, real_cleanup = fifo_module.EventFifo.__init__, runner.cleanup

    def init(self, path, handle):
        def recording(event):  # which events came over the FIFO, and in which shape
            self.uuids.add(event["uuid"])
            self.data_as_text += isinstance(event["event_data"], EncodedData)
            handle(event)

        real_init(self, path, recording)
        self.uuids, self.data_as_text = set(), 0
        made.append(self)

    def cleanup(data_dir):
        leftovers.extend(p.name for p in (data_dir / "artifacts").rglob("job_events/*"))
        real_cleanup(data_dir)

    monkeypatch.setattr(fifo_module.EventFifo, "__init__", init)
    monkeypatch.setattr(runner, "cleanup", cleanup)
    return made, leftovers


def test_every_event_comes_over_the_fifo_and_no_event_files(local_node, fifos):
    made, leftovers = fifos
    job = run_now(playbook="many.yml", nodes=[local_node], extra_vars={"steps": 25})
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    (stream,) = made
    assert stream.received == stream.announced == len(stream.uuids) > 25
    assert stream.data_as_text == stream.received  # no event's data parsed in the worker
    # Only what Ansible printed outside its callback (a warning before the callback
    # loads) comes from the terminal instead, as verbose lines.
    others = job.events.exclude(uuid__in=stream.uuids)
    assert set(others.values_list("event", flat=True)) <= {"verbose"}
    assert job.event_count == job.events.count() == stream.received + others.count()
    assert leftovers == []  # neither partial nor final per-event files


def test_stdout_lines_and_counters_are_contiguous(local_node):
    job = run_now(playbook="many.yml", nodes=[local_node], extra_vars={"steps": 5})
    events = list(
        job.events.order_by("counter").values(
            "counter", "start_line", "end_line", "stdout", "event", "task"
        )
    )
    assert [e["counter"] for e in events] == list(range(1, len(events) + 1))
    for before, after in itertools.pairwise(events):
        assert after["start_line"] == before["end_line"]
        # an event spans at least the lines of its (trailing-newline-stripped) text
        assert after["end_line"] - after["start_line"] >= after["stdout"].count("\n")
    stdout = "\n".join(e["stdout"] for e in events)
    assert "TASK [Step]" in stdout and "PLAY RECAP" in stdout
    item = next(e for e in events if e["event"] == "runner_item_on_ok")
    assert item["task"] == "Step" and "step 0" in item["stdout"]


def test_output_of_a_playbook_ansible_refuses_is_kept(local_node):
    job = run_now(playbook="broken.yml", nodes=[local_node])
    assert job.status == JobStatus.FAILED and job.rc != 0
    stdout = "\n".join(job.events.values_list("stdout", flat=True))
    assert "no_such_module_anywhere" in stdout and "ERROR" in stdout


def test_a_lost_event_makes_the_job_an_error(local_node, monkeypatch):
    real_line = fifo_module.EventFifo._line
    seen, dropped = [], []

    def drop_one(self, line):
        # whole lines, whatever the batching: the 5th event goes missing in transport
        seen.append(line)
        if len(seen) == 5:
            dropped.append(line)
            return
        real_line(self, line)

    monkeypatch.setattr(fifo_module.EventFifo, "_line", drop_one)
    job = run_now(playbook="many.yml", nodes=[local_node], extra_vars={"steps": 10})
    assert dropped
    assert job.status == JobStatus.ERROR
    assert "events incomplete" in job.reason and "arrived" in job.reason


# --- the callback's stream, without Ansible ---------------------------------------------------


@pytest.fixture
def stream_module(monkeypatch):
    monkeypatch.delenv("PORTAL_EVENT_FIFO", raising=False)
    monkeypatch.syspath_prepend(str(runner.CALLBACK_DIR))
    import awx_display  # the plugin file, imported as Ansible would

    yield awx_display
    sys.modules.pop("awx_display", None)


def _sent(read_fd) -> list[dict]:
    return [json.loads(line) for line in os.read(read_fd, 1 << 20).decode().splitlines()]


def test_stream_groups_text_by_event_and_announces_the_count(stream_module):
    read_fd, write_fd = os.pipe()
    stream = stream_module.EventStream(write_fd, sys.__stdout__)
    stream.write("before the callback\nhalf a ")
    stream.begin({"event": "runner_on_ok", "uuid": "u1", "event_data": {"host": "h"}})
    stream.write("ok: [h]\n")
    stream.end()
    stream.write("trailing\n")
    stream.close()
    events = _sent(read_fd)
    assert [e.get("event") for e in events[:-1]] == [
        "verbose",
        "verbose",
        "runner_on_ok",
        "verbose",
    ]
    assert [e.get("stdout") for e in events[:-1]] == [
        "before the callback",
        "half a ",
        "ok: [h]",
        "trailing",
    ]
    assert events[2]["start_line"] == 1 and events[2]["end_line"] == 2
    assert events[-1] == {stream_module.END_KEY: 4}


def _start(host):
    return lambda: {"event": "runner_on_start", "uuid": f"s-{host}", "event_data": {"host": host}}


def test_a_deferred_event_keeps_its_place_in_the_stream(stream_module):
    """A host's task start is built later, but sent before anything that came after it."""
    read_fd, write_fd = os.pipe()
    stream = stream_module.EventStream(write_fd, sys.__stdout__, flush_seconds=3600)
    assert stream.defer(_start("h1"))
    assert stream.defer(_start("h2"))
    stream.write("printed by a fork\n")  # text outside any event: after the starts
    assert stream.defer(_start("h3"))
    stream.begin({"event": "runner_on_ok", "uuid": "u1", "event_data": {"host": "h1"}})
    stream.write("ok: [h1]\n")
    stream.end()
    assert stream.defer(_start("h4"))
    stream.close()
    events = _sent(read_fd)
    assert [(e.get("event"), e.get("event_data", {}).get("host")) for e in events[:-1]] == [
        ("runner_on_start", "h1"),
        ("runner_on_start", "h2"),
        ("verbose", None),
        ("runner_on_start", "h3"),
        ("runner_on_ok", "h1"),
        ("runner_on_start", "h4"),
    ]
    assert [e["counter"] for e in events[:-1]] == [1, 2, 3, 4, 5, 6]
    assert [e["stdout"] for e in events[:-1]] == ["", "", "printed by a fork", "", "ok: [h1]", ""]
    assert events[-1] == {stream_module.END_KEY: 6}


def test_an_event_is_not_deferred_behind_text_waiting_outside_events(stream_module):
    read_fd, write_fd = os.pipe()
    stream = stream_module.EventStream(write_fd, sys.__stdout__, flush_seconds=3600)
    stream.write("half a line")
    assert not stream.defer(_start("h1"))  # the caller sends it now
    stream.close()
    assert [e.get("stdout") for e in _sent(read_fd)[:-1]] == ["half a line"]


def test_a_deferred_event_goes_out_on_the_flushers_tick(stream_module):
    """A long task's starts are not held back until its first result."""
    read_fd, write_fd = os.pipe()
    stream = stream_module.EventStream(write_fd, sys.__stdout__, flush_seconds=0.01)
    try:
        assert stream.defer(_start("h1"))
        ready, _, _ = select.select([read_fd], [], [], 10)
        assert ready, "the deferred start was not sent"
        assert [e["event"] for e in _sent(read_fd)] == ["runner_on_start"]
    finally:
        stream.close()


def test_an_unreadable_event_line_is_an_error_and_the_rest_is_still_read(tmp_path):
    handled = []
    fifo = fifo_module.EventFifo(tmp_path / "events.fifo", handled.append)
    fifo.start()
    writer = os.open(tmp_path / "events.fifo", os.O_WRONLY)
    os.write(
        writer, b'{"event": "verbose"}\nnot json\n{"event": "verbose"}\n{"portal_stream_end": 3}\n'
    )
    os.close(writer)
    fifo.close()
    assert len(handled) == 2 and not fifo.complete
    assert "could not be read" in fifo.problem()


def test_a_line_of_another_shape_is_parsed_whole():
    """Only the callback's shape (fields with an index, then the data) is split; any other
    JSON line is read whole, whatever the order of its members."""
    event = {"event": "verbose", "event_data": {"a": 1}, "stdout": ', "event_data": {}'}
    parsed = fifo_module.parse_line(json.dumps(event).encode())
    assert parsed == event and not isinstance(parsed["event_data"], EncodedData)
    line = fifo_module.encode_line({**event, "event_data": {"res": {"changed": True}}})
    parsed = fifo_module.parse_line(line)
    assert isinstance(parsed["event_data"], EncodedData)
    assert json.loads(parsed["event_data"]) == {"res": {"changed": True}}
    assert parsed["index"]["changed"] is True and parsed["stdout"] == event["stdout"]


@pytest.mark.parametrize(
    "odd",
    [float("nan"), float("inf"), "half a surrogate \ud800", 2**70],
    ids=["nan", "infinity", "lone-surrogate", "wide-int"],
)
def test_json_only_pythons_parser_takes_is_read_as_it_does(odd):
    """The reader parses an event's fields with orjson. What Python's json (the callback's
    encoder) writes and orjson refuses is parsed again by json; the data is kept as text,
    and a line of another shape is parsed by json: nothing is lost or changed."""
    fields = {"event": "runner_on_ok", "stdout": odd}
    if not isinstance(odd, int):  # the callback's fields hold no integer this wide
        parsed = fifo_module.parse_line(fifo_module.encode_line(fields))
        assert json.dumps(parsed["stdout"]) == json.dumps(odd)  # NaN is not equal to itself
    data = {"res": {"value": odd}}
    parsed = fifo_module.parse_line(fifo_module.encode_line({"event": "x", "event_data": data}))
    assert parsed["event_data"] == json.dumps(data)
    whole = json.dumps({"event": "verbose", "event_data": data, "stdout": odd}).encode()
    assert json.dumps(fifo_module.parse_line(whole)) == whole.decode()


def test_a_huge_result_is_left_out_as_ansible_runner_does(stream_module):
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(read_fd, received))
    reader.start()  # a pipe holds 64 KiB: the stream's writes wait for a reader
    stream = stream_module.EventStream(write_fd, sys.__stdout__)
    huge = {"stdout": "x" * (stream_module.MAX_EVENT_RES + 1)}
    stream.begin({"event": "runner_on_ok", "uuid": "u1", "event_data": {"res": huge}})
    stream.end()
    stream.begin({"event": "playbook_on_stats", "uuid": "u2", "event_data": {"res": huge}})
    stream.end()
    stream.close()
    reader.join(30)
    ok, stats, end = [json.loads(line) for line in received.decode().splitlines()]
    assert ok["event_data"]["res"] == {} and ok["index"]["host"] is None
    assert stats["event_data"]["res"] == huge  # the stats are kept whole
    assert end == {stream_module.END_KEY: 2}


def _read_all(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 1 << 20):
        into.extend(chunk)
    os.close(fd)


class _LazyDict(dict):
    """Like Ansible's lazy templating dict: what it stores is not what items() gives."""

    def items(self):
        return [(key, f"rendered {value}") for key, value in super().items()]


class _Tagged(str):
    def __str__(self):
        return "not the value"


class _Level(int):
    pass


class _Ratio(float):
    pass


class _Items(list):
    def __iter__(self):
        return iter(["not", "stored"])


@pytest.mark.parametrize(
    "value",
    [
        {"msg": "plain", "n": 1, "f": 0.5, "ok": True, "none": None, "list": [1, (2, 3)]},
        {"non-ascii": "ünïcode ✓", "control": "a\x1fb\n\t", "quote": 'say "hi" \\'},
        {1: "int key", None: "null key", 2.5: "float key"},
        {"lazy": _LazyDict(a="x"), "tagged": _Tagged("the value")},
        {"level": _Level(3), "ratio": _Ratio(0.25), "items": _Items([1, 2])},
        {"when": datetime(2026, 12, 5, 22, 1, 2, 345, tzinfo=UTC), "day": date(2026, 12, 5)},
        {"time": time(1, 2, 3), "uuid": UUID(int=7), "object": ValueError("text")},
        {"big": 2**70, "surrogate": "\ud800"},  # orjson refuses both: json writes them
    ],
    ids=["plain", "escapes", "keys", "lazy-tagged", "subclasses", "dates", "objects", "refused"],
)
def test_callback_json_reads_every_value_as_json_does(stream_module, value):
    # The same data as the runner's json encoder writes (non-ASCII aside, see Masker).
    encoded = stream_module.to_json_bytes(value)
    assert json.loads(encoded) == json.loads(stream_module.ENCODER.encode(value))


def test_event_uuids_are_version_4_and_never_repeat(stream_module):
    source = stream_module.UuidSource()
    made = [source() for _ in range(3 * source.BATCH + 5)]  # across batches
    assert len(set(made)) == len(made)
    for text in made:
        parsed = UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == RFC_4122


def test_a_forked_process_makes_uuids_of_its_own(stream_module):
    source = stream_module.UuidSource()
    source()  # the parent's batch is read
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: sends what it would hand out next
        try:
            os.write(write_fd, "\n".join(source() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    child = set(os.read(read_fd, 1 << 16).decode().split("\n"))
    os.close(read_fd)
    parent = {source() for _ in range(source.BATCH)}
    assert len(child) == 5 and not child & parent


def test_a_tagged_string_is_sent_as_its_plain_text(stream_module):
    value = stream_module.plain(_Tagged("the value"))
    assert type(value) is str and value == "the value"
    assert stream_module.plain(3) == 3 and stream_module.plain(None) is None


def test_the_worker_caches_the_callbacks_bytecode_once_for_every_run(tmp_path, monkeypatch):
    """ansible-playbook then reads the bytecode, even where none is ever written for it
    (PYTHONDONTWRITEBYTECODE): no compile of the callback per job."""
    source = tmp_path / "awx_display.py"
    source.write_text("EVENTS = 1\n")
    monkeypatch.setattr(callback_plugin, "CALLBACK", source)
    callback_plugin.compile_callback()
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert cached.is_file() and cached.stat().st_size > 0
    monkeypatch.setattr(callback_plugin, "CALLBACK", tmp_path / "gone" / "awx_display.py")
    callback_plugin.compile_callback()  # nothing to compile, or nowhere to write: no error


def test_the_file_compiled_is_the_callback_the_runner_gives_ansible():
    assert callback_plugin.CALLBACK.parent == runner.CALLBACK_DIR
    assert callback_plugin.CALLBACK.is_file()


def test_the_controllers_heap_is_frozen_only_in_the_portals_runs(stream_module, monkeypatch):
    gc.unfreeze()
    try:
        stream_module.freeze_heap()
        assert gc.get_freeze_count() == 0  # plain Ansible (no event stream): as it was
        monkeypatch.setattr(stream_module, "STREAM", object())
        stream_module.freeze_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
