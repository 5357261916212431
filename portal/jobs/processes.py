"""Ending a run completely. Ansible's workers call setsid(), so killing the playbook's process
group (what ansible-runner does) leaves them and their commands running; we freeze and kill
the whole process tree instead.

A run whose worker was SIGKILLed has no tree root left (its processes were reparented to
init), so its processes are also found by a variable of their environment, which every fork
inherits, setsid or not (see portal.jobs.orphans)."""

import contextlib
import os
import signal
from collections.abc import Callable, Iterable
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
    return sorted(with_descendants({root}) - {root})


def with_descendants(roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
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


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill_tree(root: int) -> int:
    """Freeze the tree (no new forks escape), then kill every process in it."""
    return freeze_then_kill(lambda: {root, *descendants(root)})


def freeze_then_kill(find: Callable[[], Iterable[int]]) -> int:
    """Stop what ``find`` returns until it finds nothing new (a process forking while we
    look is stopped on the next round), then kill all of them."""
    frozen: set[int] = set()
    for _ in range(5):
        found = set(find()) - frozen
        if not found:
            break
        _signal_all(found, signal.SIGSTOP)
        frozen |= found
    _signal_all(frozen, signal.SIGKILL)
    return len(frozen)


def environ_value(pid: int, name: str) -> str | None:
    """``name`` in the process's environment as it started; None if absent or unreadable
    (another user's process, or gone)."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def carrying(name: str) -> dict[int, str]:
    """Every process (that we may read) with ``name`` in its environment: pid -> value."""
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            value = environ_value(int(entry.name), name)
            if value is not None:
                found[int(entry.name)] = value
    return found


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which the process started: with the pid, it names one
    process for the whole boot (a pid alone may be reused). None once it has ended, also
    while it is a zombie that its (new) parent has not reaped yet."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def is_ssh_master(pid: int) -> bool:
    """An SSH ControlPersist master ("ssh: <socket> [mux]"): shared by later jobs."""
    try:
        cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return cmdline.startswith(b"ssh: ") and b"[mux]" in cmdline
