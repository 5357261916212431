"""The portal's callback sends the events ansible-runner's own ``awx_display`` would.

One playbook that produces every kind of event the portal's playbooks produce (a local host
and an unreachable one; items, retries, no_log, rescue, diff, async, include, handler, a play
with no hosts, a play whose hosts all fail, a warning) is run twice with ansible-runner: with
its own callback, events through its ``event_handler``, and with the portal's, events through
the FIFO as the job runner reads them. Event for event, in order: the same type, the same
fields at the top and in ``event_data``, the same values (run-specific ones, such as uuids
and times, compared by where they point or by type), and the same text.
"""

import json
import os
import re
import sys
from pathlib import Path

import ansible_runner
import pytest

from portal.jobs import runner
from portal.jobs.events import data_columns
from portal.jobs.fifo import EventFifo

PLAYBOOK = Path(__file__).parent / "playbooks" / "every_event.yml"
INVENTORY = f"""
all:
  hosts:
    local:
      ansible_connection: local
      ansible_python_interpreter: {sys.executable}
    gone:
      ansible_connection: ssh
      ansible_host: 127.0.0.1
      ansible_port: 1
"""
# Fields whose value is the run's own: compared by type (and uuids by what they point to).
TIMES = {"created", "start", "end", "duration", "jid"}
UUIDS = {"uuid", "parent_uuid", "playbook_uuid", "play_uuid", "task_uuid"}
RESULT_RUN_VALUES = {
    "start",
    "end",
    "delta",
    "ansible_job_id",
    "results_file",
    "started",
    "ansible_date_time",
    "_original_basename",
    "src",
}
PRIVATE = "in-the-controllers-environment-only"
# Added to every event by ansible-runner's own processing, not by a callback.
RUNNER_ONLY = {"runner_ident", "counter", "start_line", "end_line"}


def _run(tmp_path: Path, name: str, ours: bool, verbosity: int = 0) -> list[dict]:
    data_dir = tmp_path / name
    (data_dir / "inventory").mkdir(parents=True)
    (data_dir / "inventory" / "hosts.yml").write_text(INVENTORY)
    (data_dir / "work").mkdir()
    events: list[dict] = []
    envvars = {
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORKS": "1",  # one host at a time: both runs see the same order
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_LOCAL_TEMP": str(data_dir / "tmp"),
        "ANSIBLE_HOME": str(data_dir / "home"),
        "EVERY_EVENT_DIR": str(data_dir / "work"),
        "PORTAL_SOMETHING_PRIVATE": PRIVATE,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    fifo = None
    if ours:
        fifo = EventFifo(data_dir / "events.fifo", lambda event: events.append(_decoded(event)))
        envvars["ANSIBLE_CALLBACK_PLUGINS"] = str(runner.CALLBACK_DIR)
        envvars["PORTAL_EVENT_FIFO"] = str(fifo.path)
        fifo.start()
    ansible_runner.run(
        private_data_dir=str(data_dir),
        playbook=str(PLAYBOOK),
        inventory=str(data_dir / "inventory" / "hosts.yml"),
        envvars=envvars,
        verbosity=verbosity or None,
        event_handler=None if ours else events.append,
        quiet=True,
        settings={"suppress_ansible_output": True},
    )
    if fifo is not None:
        fifo.close()
        assert fifo.complete, fifo.problem()
    return events


def _decoded(event: dict) -> dict:
    """A FIFO event as the runner's: its data parsed, the callback's index checked and
    dropped (it must say what the data says: the sink stores it in columns)."""
    event["event_data"] = json.loads(event["event_data"])
    assert event.pop("index") == data_columns(event["event_data"]), event
    return event


def _normal(events: list[dict], data_dir: Path) -> list[dict]:
    """Each event with run-specific values replaced by what can be compared across runs."""
    names: dict[str, str] = {}

    def uuid_name(value):
        return names.setdefault(value, f"uuid-{len(names)}") if value else value

    def normal(key, value, inside_result=False):
        if key in UUIDS and isinstance(value, str):
            return uuid_name(value)
        if key in TIMES or (inside_result and key in RESULT_RUN_VALUES):
            return type(value).__name__
        if isinstance(value, dict):
            return {k: normal(k, v, inside_result or key == "res") for k, v in value.items()}
        if isinstance(value, list):
            return [normal("", v, inside_result) for v in value]
        if isinstance(value, str):
            value = value.replace(str(data_dir), "<run>")
        if key == "stdout":
            # the pty gives ansible-runner CRLF; the sink stores LF either way
            return re.sub(r"\d+", "N", value.replace("\r\n", "\n"))
        if key == "pid":
            return "pid"
        return value

    # Pre-callback output (a warning about the inventory) reaches ansible-runner's stdout
    # parser in both runs alike, and is not the callback's: left out.
    kept = [e for e in events if e.get("event_data") or e.get("event") != "verbose"]
    return [
        {k: normal(k, v) for k, v in event.items() if k not in RUNNER_ONLY}
        for event in _one_poll_per_wait(kept)
    ]


def _one_poll_per_wait(events: list[dict]) -> list[dict]:
    """How many times Ansible polls an async task depends on the clock (a CI run polled
    once more in one run than the other): a run of polls counts as its first."""
    return [
        event
        for previous, event in zip([{}, *events], events, strict=False)
        if not (event["event"] == previous.get("event") == "runner_on_async_poll")
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both callbacks' events, quiet and with -vv (verbose lines are events of their own)."""
    found = {}
    for verbosity in (0, 2):
        base = tmp_path_factory.mktemp(f"verbosity-{verbosity}")
        found[verbosity] = {
            side: (_run(base, side, ours=side == "ours", verbosity=verbosity), base / side)
            for side in ("theirs", "ours")
        }
    return found


@pytest.mark.parametrize("verbosity", [0, 2], ids=["quiet", "verbose"])
def test_the_portals_callback_sends_the_events_of_ansible_runners(runs, verbosity):
    theirs = _normal(*runs[verbosity]["theirs"])
    ours = _normal(*runs[verbosity]["ours"])
    # One difference, on purpose: the controller's environment is left out of gathered facts
    # for the setup module under any name; ansible-runner only for "setup"/"gather_facts".
    for event in theirs:
        event["event_data"].get("res", {}).get("ansible_facts", {}).pop("ansible_env", None)
    assert [e["event"] for e in ours] == [e["event"] for e in theirs]
    for index, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == reference, (index, mine["event"], _differences(mine, reference))


def _differences(mine, reference, path=""):
    """Where two events differ, as paths: enough to see which field a change broke."""
    if isinstance(mine, dict) and isinstance(reference, dict):
        found = []
        for key in sorted(set(mine) | set(reference)):
            if key not in mine or key not in reference:
                found.append(f"{path}/{key}: only in {'ours' if key in mine else 'theirs'}")
            else:
                found += _differences(mine[key], reference[key], f"{path}/{key}")
        return found
    return [] if mine == reference else [f"{path}: {mine!r} != {reference!r}"]


def test_every_kind_of_event_is_compared(runs):
    kinds = {e["event"] for e in runs[0]["ours"][0]}
    expected = {
        "playbook_on_start",
        "playbook_on_play_start",
        "playbook_on_task_start",
        "playbook_on_include",
        "playbook_on_notify",
        "playbook_on_no_hosts_matched",
        "playbook_on_no_hosts_remaining",
        "playbook_on_stats",
        "runner_on_start",
        "runner_on_ok",
        "runner_on_failed",
        "runner_on_skipped",
        "runner_on_unreachable",
        "runner_item_on_ok",
        "runner_item_on_failed",
        "runner_item_on_skipped",
        "runner_retry",
        "runner_on_file_diff",
        "runner_on_async_poll",
        "runner_on_async_ok",
        "warning",
    }
    assert not expected - kinds, sorted(expected - kinds)


def test_the_controllers_environment_stays_out_of_facts(runs):
    events = runs[0]["ours"][0]
    facts = [e for e in events if e["event_data"].get("task") == "Gather a few facts"]
    assert any(e["event"] == "runner_on_ok" for e in facts)
    assert PRIVATE not in str(events)
    assert PRIVATE in str(runs[0]["theirs"][0])  # ansible-runner's would show it


def test_a_no_log_result_is_censored(runs):
    events = runs[0]["ours"][0]
    hidden = [e for e in events if e["event_data"].get("task") == "Hide a secret"]
    assert hidden and all("hunter2" not in str(e) for e in hidden)
    assert any(e["event_data"].get("res", {}).get("censored") for e in hidden)


def test_the_callback_is_ansible_runners_name_and_needs_no_runner_module():
    source = (runner.CALLBACK_DIR / "awx_display.py").read_text()
    assert "ansible_runner" not in source.split('"""', 2)[2]
    assert os.path.basename(runner.CALLBACK_DIR) == "callback"
