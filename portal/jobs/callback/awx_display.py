"""The portal's stdout callback: ansible-runner's ``awx_display``, with a faster transport.

ansible-runner's callback writes every event to a partial JSON file and base64-encodes a
marker into stdout; the runner then parses stdout, reads the file back, merges and deletes
it. Here each event, with the text Ansible displayed for it, is written once as one JSON line
to the FIFO named by ``PORTAL_EVENT_FIFO`` (``portal.jobs.fifo`` reads it in the worker).
The last line announces how many events were sent, so a lost event is noticed.

Loaded only by the job runner, which puts this directory before ansible-runner's on
``ANSIBLE_CALLBACK_PLUGINS``; without ``PORTAL_EVENT_FIFO`` it behaves like the original.
"""

from __future__ import annotations

import atexit
import datetime
import io
import json
import os
import sys
import threading
import uuid
from typing import Any, TextIO

from ansible.plugins.shell import ShellBase
from ansible_runner.display_callback.callback import awx_display as runner_display

# Read by Ansible's config loader from this file's source: it must stay a literal.
DOCUMENTATION = """
    callback: awx_display
    short_description: Playbook events for the portal's job runner
    description:
        - ansible-runner's awx_display callback, sending events over a FIFO
    type: stdout
    extends_documentation_fragment:
      - default_callback
    requirements:
      - Set as stdout in config
"""

END_KEY = "portal_stream_end"
RUN_TAG_VAR = "PORTAL_JOB_RUN"


def tag_module_environments(tag: str | None) -> None:
    """Every module this run starts on a node carries ``PORTAL_JOB_RUN=<tag>`` in its
    environment (inside become too), so the reaper can end what a lost run left running
    there (portal/jobs/orphans.py, playbooks/end_lost_run.yml).

    Done here, in the controller process that loads this callback before any task runs,
    rather than by a shell plugin: Ansible has no setting for a shell plugin path, and one
    looked up from a collection costs ~2.5 ms per task and host (+22 % on the bench's 50 x 20
    playbook). The node's own shell type is kept."""
    if not tag or getattr(ShellBase.env_prefix, "portal_tagged", False):
        return
    original = ShellBase.env_prefix

    def env_prefix(self: ShellBase, **kwargs: Any) -> str:
        return original(self, **{RUN_TAG_VAR: tag, **kwargs})

    env_prefix.portal_tagged = True  # type: ignore[attr-defined]
    ShellBase.env_prefix = env_prefix


tag_module_environments(os.environ.get(RUN_TAG_VAR))
FLUSH_SECONDS = 0.05
BATCH_BYTES = 1 << 16


class EventStream(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr (the runner's pty merges both anyway).

    Text written between an event's begin and end becomes that event's ``stdout``; text
    outside any event becomes one ``verbose`` event per line, as ansible-runner does.
    """

    def __init__(self, fd: int, real: TextIO, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__()
        self.fd, self.real, self.owner = fd, real, os.getpid()
        self.lock = threading.RLock()
        self.current: dict | None = None
        self.pending: list[str] = []
        self.sent = 0
        self.line = 0
        # Lines go out in batches: one write (and one wake-up of the reader) per batch
        # instead of per event, from a thread, so a quiet task never holds events back.
        self.batch: list[bytes] = []
        self.batch_bytes = 0
        self.write_lock = threading.Lock()
        self.flush_seconds = flush_seconds
        self.stopping = threading.Event()
        self.flusher = threading.Thread(
            target=self._flush_periodically, daemon=True, name="portal-event-flusher"
        )
        self.flusher.start()

    # --- the file interface Display uses ------------------------------------------------

    def write(self, text: str) -> int:
        if os.getpid() != self.owner:  # a forked worker printing directly: leave it to the pty
            return self.real.write(text)
        with self.lock:
            self.pending.append(text)
            if self.current is None and "\n" in text:
                self._send_verbose(keep_partial=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase's is an attribute
        return "utf-8"

    @property
    def buffer(self) -> Any:
        return self.real.buffer

    # --- events -------------------------------------------------------------------------

    def begin(self, event: dict) -> None:
        with self.lock:
            self._send_verbose(keep_partial=False)
            self.current = event

    def end(self) -> None:
        with self.lock:
            event, self.current = self.current, None
            if event is not None:
                text, self.pending = "".join(self.pending), []
                self._send(event, text)

    def _send_verbose(self, keep_partial: bool) -> None:
        lines = "".join(self.pending).splitlines(keepends=True)
        self.pending = []
        if keep_partial and lines and not lines[-1].endswith("\n"):
            self.pending.append(lines.pop())
        for line in lines:
            event = {
                "event": "verbose",
                "uuid": str(uuid.uuid4()),
                "event_data": {},
                "created": datetime.datetime.now(datetime.UTC).isoformat(),
            }
            self._send(event, line)

    def _send(self, event: dict, text: str) -> None:
        lines = text.count("\n")
        self.sent += 1
        event.update(
            counter=self.sent,
            stdout=text.rstrip("\r\n"),
            start_line=self.line,
            end_line=self.line + lines,
        )
        self.line += lines
        self._write(json.dumps(event, cls=runner_display.AnsibleJSONEncoderLocal))

    def _write(self, line: str) -> None:
        data = (line + "\n").encode("utf-8", "replace")
        with self.lock:
            self.batch.append(data)
            self.batch_bytes += len(data)
            full = self.batch_bytes >= BATCH_BYTES
        if full:
            self._flush()

    def _flush(self) -> None:
        with self.write_lock:  # batches leave in the order they were taken
            with self.lock:
                batch, self.batch, self.batch_bytes = self.batch, [], 0
            data = memoryview(b"".join(batch))
            while data:
                data = data[os.write(self.fd, data) :]

    def _flush_periodically(self) -> None:
        while not self.stopping.wait(self.flush_seconds):
            if self.batch and os.getpid() == self.owner:
                self._flush()

    def close(self) -> None:
        if os.getpid() != self.owner or self.closed:
            return
        self.stopping.set()
        self.flusher.join()
        with self.lock:
            self.end()
            self._send_verbose(keep_partial=False)
            self._write(json.dumps({END_KEY: self.sent}))
        self._flush()
        os.close(self.fd)
        super().close()


class FifoEventContext(runner_display.EventContext):
    """awx_display's event context, handing events to the EventStream instead of files."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__()
        self.stream = stream

    def dump_begin(self, fileobj: Any) -> None:
        self.stream.begin(self.get_begin_dict())

    def dump_end(self, fileobj: Any) -> None:
        self.stream.end()


def _install(path: str) -> None:
    stream = EventStream(os.open(path, os.O_WRONLY), sys.stdout)
    # awx_display's wrappers look the context up as a module global on every call.
    runner_display.event_context = FifoEventContext(stream)
    runner_display.portal_stream = stream
    sys.stdout = sys.stderr = stream
    atexit.register(stream.close)


# Ansible may import a plugin file more than once: one stream per process.
if os.environ.get("PORTAL_EVENT_FIFO") and not getattr(runner_display, "portal_stream", None):
    _install(os.environ["PORTAL_EVENT_FIFO"])


class CallbackModule(runner_display.CallbackModule):
    CALLBACK_NAME = "awx_display"
