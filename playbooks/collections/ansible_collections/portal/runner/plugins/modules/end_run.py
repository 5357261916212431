"""Ends every process of a portal job run on this host (see portal/jobs/orphans.py)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = """
module: end_run
short_description: End the processes a lost portal job left running on this host
description:
  - Stops, then kills, every process whose environment carries C(PORTAL_JOB_RUN=<tag>),
    and their children (a child under sudo may have lost the variable).
options:
  tag:
    description: The lost run's C(PORTAL_JOB_RUN) value.
    type: str
    required: true
"""

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    parents = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    return parents


def _carries(pid: int, entry: bytes) -> bool:
    try:
        return entry in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def run_processes(tag: str) -> set[int]:
    parents = _parents()
    entry = f"PORTAL_JOB_RUN={tag}".encode()
    found = {pid for pid in parents if pid != os.getpid() and _carries(pid, entry)}
    todo = list(found)
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def _signal(pids, sig) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def end_run(tag: str) -> int:
    """Freeze until nothing new appears (no fork escapes), then kill."""
    frozen: set[int] = set()
    for _ in range(5):
        found = run_processes(tag) - frozen
        if not found:
            break
        _signal(found, signal.SIGSTOP)
        frozen |= found
    _signal(frozen, signal.SIGKILL)
    return len(frozen)


def main():
    module = AnsibleModule(
        argument_spec={"tag": {"type": "str", "required": True}}, supports_check_mode=True
    )
    tag = module.params["tag"]
    if not tag:
        module.fail_json(msg="tag must not be empty")
    if module.check_mode:
        module.exit_json(changed=bool(run_processes(tag)))
    ended = end_run(tag)
    module.exit_json(changed=bool(ended), ended=ended)


if __name__ == "__main__":
    main()
