"""Ending a run completely. Ansible's workers call setsid(), so killing the playbook's process
group (what ansible-runner does) leaves them and their commands running; we freeze and kill
the whole process tree instead."""

import contextlib
import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _parent_map() -> dict[int, int]:
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def children_running(parent: int, marker: str) -> list[int]:
    """Direct children of ``parent`` whose command line mentions ``marker``."""
    pids = []
    for pid, ppid in _parent_map().items():
        if ppid != parent:
            continue
        try:
            cmdline = (PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(pid)
    return pids


def _signal_all(pids, sig) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill_tree(root: int) -> int:
    """Freeze the tree (no new forks escape), then kill every process in it."""
    frozen: set[int] = set()
    for _ in range(5):
        tree = {root, *descendants(root)} - frozen
        if not tree:
            break
        _signal_all(tree, signal.SIGSTOP)
        frozen |= tree
    _signal_all(frozen, signal.SIGKILL)
    return len(frozen)
