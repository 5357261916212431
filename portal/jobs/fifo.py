"""The worker's end of the event FIFO written by ``portal/jobs/callback/awx_display.py``.

A reader thread turns each JSON line into an event for the EventSink. The FIFO is opened
before ansible-playbook starts (non-blocking, so the callback's open never waits and a run
that fails before loading the callback never blocks us) and drained after it ends.

A line is one JSON object whose last member is ``"event_data"``: only the part before it is
parsed; the data's JSON text is kept as it came (``EncodedData``), masked as text and stored
as it is, so an event's data, most of its bytes, is neither parsed nor encoded again here.
The callback repeats the data fields the sink stores in columns in the event's ``index``.
A line without that shape (the end marker, anything else) is parsed whole.

The fields are parsed with orjson: about a quarter of the standard library's time, on the
reader's largest cost; what orjson refuses and Python's ``json`` takes (NaN, a lone
surrogate) is parsed again by ``json``.
"""

import contextlib
import fcntl
import json
import logging
import os
import select
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from portal.jobs.events import EncodedData, data_columns

logger = logging.getLogger(__name__)

END_KEY = "portal_stream_end"
DATA_MEMBER = b', "event_data": '
PIPE_SIZE = 1 << 20  # room for bursts while the reader is descheduled
READ_SIZE = 1 << 16


class EventFifo:
    def __init__(self, path: Path, handle: Callable[[dict[str, Any]], Any]) -> None:
        os.mkfifo(path, 0o600)
        self.path, self.handle = path, handle
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self.received = 0
        self.announced: int | None = None
        self.error: Exception | None = None
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"events-{path.parent.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """After ansible-playbook has exited: read what is left, then stop."""
        self._stop.set()
        self._thread.join()
        os.close(self.fd)

    @property
    def complete(self) -> bool:
        return self.error is None and self.announced == self.received

    def problem(self) -> str:
        if self.error is not None:
            return f"the event stream could not be read: {self.error}"
        if self.announced is None:
            return "the event stream ended without its end marker"
        return f"{self.received} of {self.announced} events arrived"

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        try:
            while not self._stop.is_set():
                if poller.poll(100):
                    self._read_available()
            self._read_available()
        except Exception as exc:  # reported by problem(): the job ends as an error
            self.error = exc
            logger.exception("event stream reader failed")

    def _read_available(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            if not chunk:  # no writer (yet, or any more)
                if not self._stop.is_set():
                    self._stop.wait(0.05)  # after a writer leaves, poll() reports HUP at once
                return
            self._lines(chunk)

    def _lines(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            try:
                self._line(line)
            except Exception as exc:  # keep reading: a blocked writer would hang the run
                logger.exception("bad event line")
                self.error = self.error or exc

    def _line(self, line: bytes) -> None:
        event = parse_line(line)
        if END_KEY in event:
            self.announced = int(event[END_KEY])
            return
        self.received += 1
        self.handle(event)


def parse_line(line: bytes) -> dict[str, Any]:
    """An event, its data left as JSON text when the line ends with it. The first
    ``, "event_data": `` is the member's: in the fields before it, quotes inside strings are
    escaped, so the sequence cannot occur there."""
    at = line.find(DATA_MEMBER)
    if at < 0 or not line.endswith(b"}"):
        return json.loads(line)
    event = _fields(line[:at] + b"}")
    if "index" not in event:  # not the callback's shape: the data may not be last
        return json.loads(line)
    event["event_data"] = EncodedData(line[at + len(DATA_MEMBER) : -1].decode())
    return event


def _fields(text: bytes) -> dict[str, Any]:
    """orjson for the callback's fields (strings, bools, small counters): it reads an
    integer wider than 64 bits as a float, so data and lines of any other shape keep
    Python's parser."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, a lone surrogate: JSON only Python's parser takes
        return json.loads(text)


def encode_line(event: dict[str, Any]) -> bytes:
    """An event as the callback writes it (for tests and the bench, which replay events);
    ``data_columns`` is the callback's ``_index``."""
    data = event.get("event_data") or {}
    fields = {key: value for key, value in event.items() if key not in ("event_data", "index")}
    fields["index"] = event.get("index") or data_columns(data)
    return f'{json.dumps(fields)[:-1]}, "event_data": {json.dumps(data)}}}'.encode()
