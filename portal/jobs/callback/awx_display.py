"""The portal's stdout callback: Ansible's default output, and each event sent to the worker.

It stands in for ansible-runner's ``awx_display`` (same name, so the runner's
``ANSIBLE_STDOUT_CALLBACK=awx_display`` picks it; the job runner puts this directory before
the runner's on ``ANSIBLE_CALLBACK_PLUGINS``) and sends the same events with the same fields
(tests/jobs/test_callback_equivalence.py compares them, event type by event type), with less
work per event:

- no per-event context objects: the playbook, play and task context is kept in three dicts
  and merged once per event; environment settings are read once, not per event;
- Ansible's ``Display`` is wrapped only where an event's type depends on it (which method
  printed a line outside any callback event), without binding every call's signature;
- a host's task start, which has no text, is built after the task's forks rather than
  between them (``EventStream.defer``), and still sent before anything that came after it;
- each event, with the text Ansible displayed for it, is written once as one JSON line to the
  FIFO named by ``PORTAL_EVENT_FIFO`` (``portal.jobs.fifo`` reads it in the worker) instead
  of a partial file per event plus a base64 marker in stdout. The last line announces how
  many events were sent, so a lost event is noticed;
- the controller's heap is frozen (``gc.freeze``) once the playbook is loaded and again after
  the last event (``freeze_heap``), so neither the collections of a long run nor the
  interpreter's exit walk everything Ansible loaded at start.

Without ``PORTAL_EVENT_FIFO`` it is Ansible's default callback.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime
import functools
import gc
import io
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from copy import copy
from typing import Any, TextIO

from ansible import constants as C
from ansible.plugins.loader import callback_loader
from ansible.plugins.shell import ShellBase
from ansible.utils.display import Display

orjson: Any
try:
    import orjson
except ImportError:  # an ansible-playbook on another Python than the portal's
    orjson = None

# Through the loader, as ansible-runner does: that also loads its option definitions.
DefaultCallbackModule: Any = callback_loader.get("default", class_only=True)

# Read by Ansible's config loader from this file's source: it must stay a literal.
DOCUMENTATION = """
    callback: awx_display
    short_description: Playbook events for the portal's job runner
    description:
        - Ansible's default output, with each event sent to the portal's job runner
    type: stdout
    extends_documentation_fragment:
      - default_callback
    requirements:
      - Set as stdout in config
"""

END_KEY = "portal_stream_end"
RUN_TAG_VAR = "PORTAL_JOB_RUN"
CENSORED = (
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
)
# ansible-runner leaves the controller's environment out of facts for the short names only.
FACT_GATHERING = frozenset(
    f"{prefix}{name}"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("setup", "gather_facts")
)
# ansible-runner's limit on a result's size in an event (MAX_EVENT_RES), read once.
MAX_EVENT_RES = int(os.environ.get("MAX_EVENT_RES", "700000"))


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

# Everything per event runs in the controller process, the run's bottleneck on a small
# machine (20 forks share its cores): per event, no system call (os.getpid() is one) and no
# Python callback from orjson (Ansible's tagged strings and datetimes are made plain first).


class ProcessId:
    """This process's id, read again only after a fork."""

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.value = os.getpid()


PID = ProcessId()


class UuidSource:
    """Version 4 uuids as ``str(uuid.uuid4())`` writes them, cut from one read of the OS's
    random source per 256 (``uuid4`` reads it once per uuid, a third of its time)."""

    BATCH = 256

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: list[str] = []
        os.register_at_fork(after_in_child=self._forked)

    def __call__(self) -> str:
        with self.lock:
            if not self.pool:
                self.pool = self._batch()
            return self.pool.pop()

    def _batch(self) -> list[str]:
        # The version nibble is 4; the variant's two high bits are 10 (a hex digit in 89ab).
        text = os.urandom(16 * self.BATCH).hex()
        return [
            f"{text[i : i + 8]}-{text[i + 8 : i + 12]}-4{text[i + 13 : i + 16]}-"
            f"{'89ab'[int(text[i + 16], 16) & 3]}{text[i + 17 : i + 20]}-{text[i + 20 : i + 32]}"
            for i in range(0, len(text), 32)
        ]

    def _forked(self) -> None:
        """A fork must not hand out its parent's uuids (nor wait on a lock held at the fork)."""
        self.lock = threading.Lock()
        self.pool = []


new_uuid = UuidSource()


def plain(text: Any) -> Any:
    """Ansible's tagged string as a plain ``str`` (the same text), anything else as it is."""
    return str.__str__(text) if isinstance(text, str) else text


class EventStream(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr (the runner's pty merges both anyway).

    Text written between an event's begin and end becomes that event's ``stdout``; text
    outside any event becomes one ``verbose`` event per line, as ansible-runner does.
    """

    def __init__(self, fd: int, real: TextIO, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__()
        self.fd, self.real, self.owner = fd, real, PID.value
        self.lock = threading.RLock()
        self.current: tuple[dict, bytes] | None = None
        self.pending: list[str] = []
        # Events whose text is empty, built later: see defer().
        self.deferred: list[Callable[[], dict]] = []
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
        if PID.value != self.owner:  # a forked worker printing directly: leave it to the pty
            return self.real.write(text)
        with self.lock:
            if self.deferred:
                self._send_deferred()
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
        """Its data encoded now, as ansible-runner does: Ansible's default output then removes
        ``exception`` and ``warnings`` from the result it prints."""
        with self.lock:
            self._send_deferred()
            self._send_verbose(keep_partial=False)
            self.current = self._encode(event)

    def end(self) -> None:
        with self.lock:
            encoded, self.current = self.current, None
            if encoded is not None:
                text, self.pending = "".join(self.pending), []
                self._send(encoded, text)

    def defer(self, build: Callable[[], dict]) -> bool:
        """An event without text (a host's task start), built and sent later, before anything
        sent after it: at the next event, text or flusher tick. The controller forks for every
        task and host, and each page it writes after a fork is copied first: the starts of a
        task, which arrive between those forks, are built together, after them. False when
        text printed outside any event is waiting: the event goes out in its place now."""
        with self.lock:
            if self.pending and self.current is None:
                return False
            self.deferred.append(build)
            return True

    def _send_deferred(self) -> None:
        while self.deferred:
            builds, self.deferred = self.deferred, []
            for build in builds:
                self._send(self._encode(build()), "")

    def _send_verbose(self, keep_partial: bool) -> None:
        lines = "".join(self.pending).splitlines(keepends=True)
        self.pending = []
        if keep_partial and lines and not lines[-1].endswith("\n"):
            self.pending.append(lines.pop())
        for line in lines:
            event = {
                "event": "verbose",
                "uuid": new_uuid(),
                "event_data": {},
                "created": now().isoformat(),
            }
            self._send(self._encode(event), line)

    @staticmethod
    def _encode(event: dict) -> tuple[dict, bytes]:
        """The event's fields (a dict of its own: this event's, never shared) and its data
        as JSON (see ``_send``)."""
        data = event.pop("event_data", {})
        event["index"] = _index(data)
        encoded_data = to_json_bytes(data)
        # ansible-runner's limit, in characters: a huge result is left out (the stats stay)
        keep_whole = "res" not in data or event["event"] == "playbook_on_stats"
        too_big = len(encoded_data) > MAX_EVENT_RES and len(encoded_data.decode()) > MAX_EVENT_RES
        if too_big and not keep_whole:
            encoded_data = to_json_bytes({**data, "res": {}})
        return event, encoded_data

    def _send(self, encoded: tuple[dict, bytes], text: str) -> None:
        """One JSON line: the event's fields, its text and place in the output, and its
        data last, so the worker can store the data's text as it is without parsing it
        (``portal.jobs.fifo``). ``index`` repeats the few data fields the worker needs."""
        fields, data = encoded
        lines = text.count("\n")
        self.sent += 1
        fields["counter"] = self.sent
        fields["stdout"] = text.rstrip("\r\n")
        fields["start_line"] = self.line
        fields["end_line"] = self.line + lines
        self.line += lines
        self._write(b"".join((to_json_bytes(fields)[:-1], b', "event_data": ', data, b"}\n")))

    def _write(self, data: bytes) -> None:
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
            if PID.value != self.owner:
                continue
            if self.deferred:
                with self.lock:
                    self._send_deferred()
            if self.batch:
                self._flush()

    def close(self) -> None:
        if PID.value != self.owner or self.closed:
            return
        self.stopping.set()
        self.flusher.join()
        with self.lock:
            self.end()
            self._send_deferred()
            self._send_verbose(keep_partial=False)
            self._write(json.dumps({END_KEY: self.sent}).encode() + b"\n")
        self._flush()
        os.close(self.fd)
        super().close()


class EventEncoder(json.JSONEncoder):
    """JSON for Ansible's values as ansible-runner encodes them: vaulted values as their
    ciphertext, dates as ISO text; anything else as its text, never a lost event."""

    def default(self, o: Any) -> Any:
        if getattr(o, "yaml_tag", None) == "!vault":
            text = o._ciphertext
            return {"__ansible_vault": text.decode() if isinstance(text, bytes) else text}
        if isinstance(o, datetime.date | datetime.datetime):
            return o.isoformat()
        return str(o)


ENCODER = EventEncoder()  # one for every event: json.dumps(cls=...) makes one per call

# orjson writes an event in a third of the time json takes (in the controller process, which
# runs every callback and is the run's bottleneck). The same JSON as ENCODER's, but with
# non-ASCII characters as they are rather than \u-escaped (portal.jobs.events.Masker looks
# for a secret in both forms). Every subclass of a builtin and every date, dataclass and
# other object goes through _as_json_builtin, which reads it as json's encoder does.
ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    if orjson is not None
    else 0
)


def _as_json_builtin(o: Any) -> Any:
    """What json's C encoder reads of a value orjson leaves to its caller: a str or number
    subclass as its plain value, a dict subclass through its ``items()`` (Ansible's lazy
    templating dicts render there), a list or tuple subclass as it iterates, anything else
    as ENCODER's ``default`` says."""
    if isinstance(o, str):
        return str.__str__(o)
    if isinstance(o, dict):
        return dict(o.items())
    if isinstance(o, list | tuple):
        return list(o)
    if isinstance(o, int):
        return int(o)
    if isinstance(o, float):
        return float(o)
    return ENCODER.default(o)


def to_json_bytes(value: Any) -> bytes:
    """UTF-8 JSON text (json's, with non-ASCII \\u-escaped, where orjson refuses a value)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=_as_json_builtin, option=ORJSON_OPTIONS)
        except TypeError:  # a lone surrogate, an int beyond 64 bits, a cycle: as json does
            pass
    return ENCODER.encode(value).encode()


def _index(data: dict[str, Any]) -> dict[str, Any]:
    """What the worker stores in columns of its own, read from the data once, here.

    The same rule as ``portal.jobs.events.data_columns``, written twice on purpose: this file
    runs inside ansible-playbook, where the portal is not importable. The equivalence test
    checks the two agree on every event it produces."""
    result = data.get("res")
    result = result if isinstance(result, dict) else {}
    return {
        "host": data.get("host"),
        "task": data.get("task"),
        "play": data.get("play"),
        "role": data.get("role"),
        "changed": bool(result.get("changed")),
        "failed": bool(result.get("failed")) or bool(data.get("failures")),
    }


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- text Ansible prints outside any callback event ----------------------------------------
#
# ansible-runner makes such a print an event of its own, typed by the Display method that
# printed it (a warning, a deprecation, a verbose line, ...), with a flag per Display method
# on the way in its event data. Kept here, with a flag list per thread instead of a context
# object, no signature binding on every call, and display.debug (called ~18 times per task
# and host) left alone unless Ansible's debug output is on.

_flags = threading.local()
DISPLAY_EVENT_TYPES = ("debug", "verbose", "deprecated", "warning", "system_warning", "error")


def _active_flags() -> list[dict[str, Any]]:
    stack = getattr(_flags, "stack", None)
    if stack is None:
        stack = _flags.stack = []
    return stack


def _flagged(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stack = _active_flags()
        stack.append({name: True})
        try:
            return method(*args, **kwargs)
        finally:
            stack.pop()

    return wrapper


def _flagged_verbose(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Display, msg: str, host: str | None = None, caplevel: int = 2) -> Any:
        flags: dict[str, Any] = {"verbose": True, "verbosity": caplevel + 1}
        if host is not None:
            flags["remote_addr"] = host
        stack = _active_flags()
        stack.append(flags)
        try:
            return method(self, msg, host=host, caplevel=caplevel)
        finally:
            stack.pop()

    return wrapper


def _display_as_event(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Display, msg: str, *args: Any, **kwargs: Any) -> Any:
        stream = STREAM
        # Forks send their display calls to the controller, which prints them: only there.
        log_only = kwargs.get("log_only", len(args) > 3 and args[3])
        if stream is None or PID.value != stream.owner or log_only:
            return method(self, msg, *args, **kwargs)
        with self._lock:
            if stream.current is not None:  # inside a callback event: part of its text
                return method(self, msg, *args, **kwargs)
            stream.begin(CONTEXT.display_event())
            try:
                return method(self, msg, *args, **kwargs)
            finally:
                stream.end()

    return wrapper


def _wrap_display() -> None:
    if getattr(Display.display, "portal_events", False):
        return
    skip = {"display", "verbose", "v", "vv", "vvv", "vvvv", "vvvvv", "vvvvvv"}
    if not C.DEFAULT_DEBUG:
        skip.add("debug")  # it prints nothing then, and is the most called
    for name in dir(Display):
        method = getattr(Display, name)
        if name.startswith("_") or "cow" in name or "prompt" in name or name in skip:
            continue
        if callable(method):
            setattr(Display, name, _flagged(name, method))
    Display.verbose = _flagged_verbose(Display.verbose)
    Display.display = _display_as_event(Display.display)
    Display.display.portal_events = True


# --- the context every event carries -------------------------------------------------------


def task_context(task: Any) -> dict[str, Any]:
    """The task fields of an event, as ansible-runner's ``set_task`` gives them."""
    context = {
        "task": plain(task.name or task.action),
        "task_uuid": str(task._uuid),
        "task_action": plain(task.action),
        "resolved_action": plain(getattr(task, "resolved_action", task.action)),
        "task_args": "",
    }
    with contextlib.suppress(AttributeError):
        context["task_path"] = plain(task.get_path())
    if C.DISPLAY_ARGS_TO_STDOUT:
        context["task_args"] = (
            CENSORED if task.no_log else ", ".join(f"{k}={v}" for k, v in task.args.items())
        )
    role = getattr(task, "_role", None)
    if role:
        name = role._role_name
        if hasattr(role, "get_name") and role.get_name() != name:
            context["resolved_role"] = role.get_name()
    else:
        name = getattr(task, "role_name", "")
    if name:
        context["role"] = plain(name)
    return context


class EventContext:
    """The playbook, play and task an event belongs to, merged into its data once."""

    def __init__(self) -> None:
        self.playbook: dict[str, Any] = {}
        self.play: dict[str, Any] = {}
        self.task: dict[str, Any] = {}
        self._merged: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})

    def event(self, event: str, data: dict[str, Any], task: dict | None = None) -> dict:
        context = self._context(self.task if task is None else task)
        return self._begin_dict(event, {**context, **data})

    def _context(self, task: dict[str, Any]) -> dict[str, Any]:
        """The three merged, once while they stay the same objects (each is replaced, never
        changed in place), rather than once per event."""
        playbook, play, last_task, merged = self._merged
        if playbook is not self.playbook or play is not self.play or last_task is not task:
            merged = {**self.playbook, **self.play, **task}
            self._merged = (self.playbook, self.play, task, merged)
        return merged

    def display_event(self) -> dict:
        flags: dict[str, Any] = {}
        for entry in _active_flags():
            flags.update(entry)
        kind = next((key for key in DISPLAY_EVENT_TYPES if flags.get(key)), "verbose")
        merged = {**self._context(self.task), **flags}
        merged["uuid"] = new_uuid()
        return self._begin_dict(kind, merged)

    def _begin_dict(
        self, event: str, data: dict[str, Any], created: datetime.datetime | None = None
    ) -> dict:
        """ansible-runner's event fields: type, pid, uuid, creation time, parent."""
        this = data.get("uuid")
        if not this:
            this = data["uuid"] = new_uuid()
        begin: dict[str, Any] = {
            "event": event,
            "pid": PID.value,
            "uuid": this,
            "created": (created or now()).isoformat(),
        }
        parent = data.get("parent_uuid")
        if not parent:
            for key in ("task_uuid", "play_uuid", "playbook_uuid"):
                value = data.get(key)
                if value and value != this:
                    parent = value
                    break
        if parent:
            begin["parent_uuid"] = parent
        if "verbosity" in data:
            begin["verbosity"] = data.pop("verbosity")
        begin["event_data"] = data
        return begin


CONTEXT = EventContext()
STREAM: EventStream | None = None


def _install(path: str) -> None:
    global STREAM
    STREAM = EventStream(os.open(path, os.O_WRONLY), sys.stdout)
    sys.stdout = sys.stderr = STREAM
    atexit.register(STREAM.close)
    _wrap_display()


# Ansible may import a plugin file more than once: one stream per process.
_installed = sys.modules.get("portal_event_stream")
if _installed is not None:
    STREAM, CONTEXT = _installed.STREAM, _installed.CONTEXT
elif os.environ.get("PORTAL_EVENT_FIFO"):
    _install(os.environ["PORTAL_EVENT_FIFO"])
    sys.modules["portal_event_stream"] = sys.modules[__name__]


def freeze_heap() -> None:
    """Move every object the controller holds now out of the garbage collector's reach: what
    Ansible loaded at start (modules, config, inventory, the parsed playbook) lives until
    the process exits, yet each full collection walks it again, and so does the interpreter's
    exit, about 120 ms after the last event of a run (bench/README.md: "The controller's
    heap"). Forked workers inherit the frozen heap, so their collections skip it too
    (Python's documented use of ``gc.freeze``). Only the portal's runs (an event stream)."""
    if STREAM is not None:
        gc.freeze()


def _censored(result: dict[str, Any]) -> dict[str, Any]:
    """A no_log result, or no_log loop items, hidden as ansible-runner hides them."""
    if result.get("_ansible_no_log", False):
        return {"censored": CENSORED}
    items = result.get("results")
    if items:
        result["results"] = [
            {"censored": CENSORED}
            if isinstance(item, dict) and item.get("_ansible_no_log", False)
            else item
            for item in copy(items)
        ]
    return result


def _event_loop(task: Any) -> Any:
    return getattr(task, "loop_with", None)


class CallbackModule(DefaultCallbackModule):
    """Ansible's default output; around each hook, the event ansible-runner would send."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "awx_display"

    EVENTS_WITHOUT_TASK = frozenset(
        {
            "playbook_on_start",
            "playbook_on_stats",
            "playbook_on_setup",
            "playbook_on_notify",
            "playbook_on_import_for_host",
            "playbook_on_not_import_for_host",
            "playbook_on_no_hosts_matched",
            "playbook_on_no_hosts_remaining",
        }
    )

    def __init__(self) -> None:
        super().__init__()
        self.host_start: dict[str, datetime.datetime] = {}
        self.seen_uuids: dict[str, int] = collections.defaultdict(int)
        self.playbook_uuid = str(uuid.uuid4())
        self.last_task: tuple[Any, dict[str, Any]] = (None, {})
        self.show_host_starts = False

    def set_options(self, *args: Any, **kwargs: Any) -> Any:
        # This plugin's options are the default callback's (its DOCUMENTATION extends them).
        definitions = C.config.get_configuration_definition
        base = definitions(DefaultCallbackModule._load_name, plugin_type="callback")
        mine = definitions(self._load_name, plugin_type="callback")
        C.config.initialize_plugin_configuration_definitions(
            "callback", self._load_name, base | mine
        )
        result = super().set_options(*args, **kwargs)
        self.show_host_starts = bool(self.get_option("show_per_host_start"))
        return result

    # --- one event around one hook ------------------------------------------------------

    def _emit(self, event: str, data: dict[str, Any], render: Callable, *args: Any) -> None:
        stream = STREAM
        if stream is None:
            render(*args)
            return
        task = data.pop("task", None) if event not in self.EVENTS_WITHOUT_TASK else None
        if data.get("res"):
            data["res"] = _censored(data["res"])
        with self._display._lock:
            stream.begin(CONTEXT.event(event, data, self._task_context(task) if task else None))
            try:
                render(*args)
            finally:
                stream.end()

    def _task_context(self, task: Any) -> dict[str, Any]:
        """A task's context, once per task rather than once per host: its uuid and name
        (which may be templated per host) say which; with task args shown, every time."""
        if C.DISPLAY_ARGS_TO_STDOUT:
            return task_context(task)
        key = (task._uuid, task.name)
        if self.last_task[0] != key:
            self.last_task = (key, task_context(task))
        return self.last_task[1]

    def _unique(self, uuid_: str) -> str:
        """A play or task seen again (free strategy, serial) gets a numbered uuid."""
        self.seen_uuids[uuid_] += 1
        count = self.seen_uuids[uuid_]
        return uuid_ if count == 1 else f"{uuid_}_{count}"

    def _timing(self, host: str) -> dict[str, Any]:
        started = self.host_start.get(host)
        if not started:
            return {"start": None, "end": None, "duration": None}
        ended = now()
        return {
            # as the encoder writes a datetime, written here once
            "start": started.isoformat(),
            "end": ended.isoformat(),
            "duration": (ended - started).total_seconds(),
        }

    def _host_result(self, result: Any, **extra: Any) -> dict[str, Any]:
        host = plain(result._host.get_name())
        return {
            "host": host,
            "remote_addr": plain(result._host.address),
            "task": result._task,
            **self._timing(host),
            **extra,
        }

    # --- playbook, play, task -----------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        CONTEXT.playbook = {
            "playbook": plain(getattr(playbook, "_file_name", "???")),
            "playbook_uuid": self.playbook_uuid,
        }
        CONTEXT.play, CONTEXT.task = {}, {}
        self._emit(
            "playbook_on_start",
            {"uuid": self.playbook_uuid},
            super().v2_playbook_on_start,
            playbook,
        )
        freeze_heap()

    def v2_playbook_on_play_start(self, play: Any) -> None:
        play._uuid = self._unique(str(play._uuid))
        hosts = getattr(play, "hosts", "")
        pattern = ",".join(hosts) if isinstance(hosts, list) else hosts
        pattern = plain(pattern)
        name = plain(play.get_name().strip() or pattern)
        CONTEXT.play = {"play": name, "play_uuid": str(play._uuid), "play_pattern": pattern}
        CONTEXT.task = {}
        data = {"name": name, "pattern": pattern, "uuid": str(play._uuid)}
        self._emit("playbook_on_play_start", data, super().v2_playbook_on_play_start, play)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        CONTEXT.task = task_context(task)
        data = {
            "task": task,
            "name": plain(task.get_name()),
            "is_conditional": is_conditional,
            "uuid": self._unique(str(task._uuid)),
        }
        self._emit(
            "playbook_on_task_start", data, super().v2_playbook_on_task_start, task, is_conditional
        )

    def _handler_start(self, task: Any, render: Callable) -> None:
        # A handler (or cleanup task) is a task start with is_conditional set, as in Ansible 1.
        CONTEXT.task = task_context(task)
        data = {"task": task, "name": task.get_name(), "uuid": str(task._uuid)}
        self._emit("playbook_on_task_start", {**data, "is_conditional": True}, render, task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._handler_start(task, super().v2_playbook_on_handler_task_start)

    def v2_playbook_on_cleanup_task_start(self, task: Any) -> None:
        self._handler_start(task, super().v2_playbook_on_cleanup_task_start)

    def v2_playbook_on_include(self, included_file: Any) -> None:
        name = included_file._filename if included_file is not None else None
        data = {"included_file": name}
        self._emit("playbook_on_include", data, super().v2_playbook_on_include, included_file)

    def v2_playbook_on_notify(self, handler: Any, host: Any) -> None:
        data = {"host": host.get_name(), "handler": handler.get_name()}
        self._emit("playbook_on_notify", data, super().v2_playbook_on_notify, handler, host)

    def v2_playbook_on_no_hosts_matched(self) -> None:
        self._emit("playbook_on_no_hosts_matched", {}, super().v2_playbook_on_no_hosts_matched)

    def v2_playbook_on_no_hosts_remaining(self) -> None:
        render = super().v2_playbook_on_no_hosts_remaining
        self._emit("playbook_on_no_hosts_remaining", {}, render)

    def v2_playbook_on_vars_prompt(
        self,
        varname: str,
        private: bool = True,
        prompt: str | None = None,
        encrypt: str | None = None,
        confirm: bool = False,
        salt_size: int | None = None,
        salt: str | None = None,
        default: Any = None,
        unsafe: bool | None = None,
    ) -> None:
        data = {
            "varname": varname,
            "private": private,
            "prompt": prompt,
            "encrypt": encrypt,
            "confirm": confirm,
            "salt_size": salt_size,
            "salt": salt,
            "default": default,
            "unsafe": unsafe,
        }
        render = super().v2_playbook_on_vars_prompt
        args = (varname, private, prompt, encrypt, confirm, salt_size, salt, default)
        self._emit("playbook_on_vars_prompt", data, render, *args)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        CONTEXT.play, CONTEXT.task = {}, {}
        data = {
            "changed": stats.changed,
            "dark": stats.dark,
            "failures": stats.failures,
            "ignored": getattr(stats, "ignored", 0),
            "ok": stats.ok,
            "processed": stats.processed,
            "rescued": getattr(stats, "rescued", 0),
            "skipped": stats.skipped,
            "artifact_data": stats.custom.get("_run", {}) if hasattr(stats, "custom") else {},
        }
        self._emit("playbook_on_stats", data, super().v2_playbook_on_stats, stats)
        freeze_heap()  # the run's objects too: the exit's collections need not walk them

    # --- a task on a host ---------------------------------------------------------------

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        name = plain(host.get_name())
        started = self.host_start[name] = now()
        stream = STREAM
        if stream is not None and not self.show_host_starts:  # no text: sent later
            context = (CONTEXT.playbook, CONTEXT.play)
            if stream.defer(lambda: self._start_event(name, task, started, *context)):
                return
        data = {"host": name, "task": task}
        self._emit("runner_on_start", data, super().v2_runner_on_start, host, task)

    def _start_event(
        self, host: str, task: Any, started: datetime.datetime, playbook: dict, play: dict
    ) -> dict:
        """The event ``_emit`` would have sent at ``started``."""
        data = {**playbook, **play, **self._task_context(task), "host": host}
        return CONTEXT._begin_dict("runner_on_start", data, started)

    def v2_runner_on_ok(self, result: Any) -> None:
        if result._task.action in FACT_GATHERING:
            # the controller's environment stays out of the job's events
            result._result.get("ansible_facts", {}).pop("ansible_env", None)
        data = self._host_result(result, res=result._result, event_loop=_event_loop(result._task))
        self._emit("runner_on_ok", data, super().v2_runner_on_ok, result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        data = self._host_result(
            result,
            res=result._result,
            ignore_errors=ignore_errors,
            event_loop=_event_loop(result._task),
        )
        self._emit("runner_on_failed", data, super().v2_runner_on_failed, result, ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        data = self._host_result(result, event_loop=_event_loop(result._task))
        self._emit("runner_on_skipped", data, super().v2_runner_on_skipped, result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        data = self._host_result(result, res=result._result)
        self._emit("runner_on_unreachable", data, super().v2_runner_on_unreachable, result)

    def _item(self, event: str, result: Any, render: Callable) -> None:
        data = {"host": plain(result._host.get_name()), "task": result._task, "res": result._result}
        self._emit(event, data, render, result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        self._item("runner_item_on_ok", result, super().v2_runner_item_on_ok)

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._item("runner_item_on_failed", result, super().v2_runner_item_on_failed)

    def v2_runner_item_on_skipped(self, result: Any) -> None:
        self._item("runner_item_on_skipped", result, super().v2_runner_item_on_skipped)

    def v2_runner_retry(self, result: Any) -> None:
        self._item("runner_retry", result, super().v2_runner_retry)

    def _async(self, event: str, result: Any, render: Callable) -> None:
        data = {
            "host": result._host.get_name(),
            "task": result._task,
            "res": result._result,
            "jid": result._result.get("ansible_job_id"),
        }
        self._emit(event, data, render, result)

    def v2_runner_on_async_poll(self, result: Any) -> None:
        self._async("runner_on_async_poll", result, super().v2_runner_on_async_poll)

    def v2_runner_on_async_ok(self, result: Any) -> None:
        self._async("runner_on_async_ok", result, super().v2_runner_on_async_ok)

    def v2_runner_on_async_failed(self, result: Any) -> None:
        self._async("runner_on_async_failed", result, super().v2_runner_on_async_failed)

    def v2_on_file_diff(self, result: Any) -> None:
        data = {
            "host": result._host.get_name(),
            "task": result._task,
            "diff": result._result.get("diff"),
        }
        self._emit("runner_on_file_diff", data, super().v2_on_file_diff, result)
