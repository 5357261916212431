"""A run's record on disk, and a teardown that works from that record alone.

The record names the run; everything else (processes, mounts, loop devices, links,
cgroups) teardown finds on the machine, so it also cleans up after a run that died halfway,
and `python -m tests.hosts down` can end a run another process started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .machine import (
    HarnessError,
    cgroup_dirs,
    cgroup_pids,
    mounts_under,
    pid_alive,
    remove_cgroup_tree,
    run,
    ssh_pids_mentioning,
)
from .network import bridge_name, delete_link, subnet_in_use, veth_name

log = logging.getLogger("tests.hosts")

CGROUP_PARENT = "portal-test-hosts"
NSPAWN_RUNTIME = Path("/run/systemd/nspawn")


def state_root() -> Path:
    return Path(os.environ.get("PORTAL_TEST_HOSTS_STATE", "/run/portal-test-hosts"))


@dataclass
class RunState:
    run_id: str
    octet: int
    owner_pid: int
    detached: bool = False
    created: float = field(default_factory=time.time)
    hosts: list = field(default_factory=list)  # dicts: name, address, has_volume

    @property
    def run_dir(self) -> Path:
        return state_root() / self.run_id

    @property
    def state_file(self) -> Path:
        return state_root() / f"{self.run_id}.json"

    @property
    def cgroup_relative(self) -> str:
        return f"{CGROUP_PARENT}/{self.run_id}"

    @property
    def bridge(self) -> str:
        return bridge_name(self.octet)

    def save(self):
        partial = self.state_file.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self), indent=2))
        partial.rename(self.state_file)

    @classmethod
    def load(cls, path: Path) -> RunState:
        return cls(**json.loads(path.read_text()))

    def is_orphaned(self) -> bool:
        return not self.detached and not pid_alive(self.owner_pid)


def reserve_run() -> RunState:
    """Claim a free 10.213.X.0/24 and its run directory (mkdir is the atomic claim)."""
    state_root().mkdir(parents=True, exist_ok=True)
    first = os.getpid() % 254
    for step in range(254):
        octet = (first + step) % 254 + 1
        if subnet_in_use(octet):
            continue
        state = RunState(run_id=f"n{octet}", octet=octet, owner_pid=os.getpid())
        try:
            state.run_dir.mkdir()
        except FileExistsError:
            continue
        state.save()
        return state
    raise HarnessError("no free 10.213.X.0/24 for a test host bridge")


def all_runs():
    runs = []
    for path in sorted(state_root().glob("n*.json")):
        try:
            runs.append(RunState.load(path))
        except (OSError, ValueError, TypeError) as error:
            log.warning("unreadable run record %s: %s", path, error)
    return runs


def reap_orphaned_runs():
    """Tear down runs whose owner died without cleaning up (SIGKILL, OOM, power loss)."""
    for state in all_runs():
        if state.is_orphaned():
            log.warning(
                "tearing down orphaned run %s (owner %s is gone)", state.run_id, state.owner_pid
            )
            try:
                tear_down(state)
            except HarnessError as error:
                # Not this run's: a busy mount (a shell inside it) must not keep it from
                # booting; the next run or `down` tries again.
                log.warning("orphaned run %s not torn down yet: %s", state.run_id, error)


def tear_down(state: RunState, children=(), stop_timeout=10.0):
    """Undo everything a run made; each step runs even when an earlier one failed."""
    errors = []
    steps = (
        lambda: stop_hosts(state, children, stop_timeout),
        lambda: end_ssh_masters(state),
        lambda: unmount_and_detach(state),
        lambda: remove_links(state),
        lambda: remove_nspawn_leftovers(state),
        lambda: remove_cgroups(state),
        lambda: remove_run_files(state),
    )
    for step in steps:
        try:
            step()
        except Exception as error:  # keep tearing down; report at the end
            errors.append(str(error))
    if errors:
        raise HarnessError(f"teardown of {state.run_id} incomplete: " + "; ".join(errors))
    log.info("run %s torn down", state.run_id)


def run_pids(state: RunState):
    pids = set()
    for directory in cgroup_dirs(state.cgroup_relative):
        pids |= cgroup_pids(directory)
    return pids


def stop_hosts(state: RunState, children, timeout):
    """SIGTERM makes each supervisor power its host off cleanly; SIGKILL what lingers."""
    members = run_pids(state)
    for pid in supervisor_pids(state, members):
        signal_pid(pid, signal.SIGTERM)
    if not wait_for_exit(state, children, timeout):
        log.warning("run %s: hosts did not power off in %.0f s, killing", state.run_id, timeout)
        kill_cgroups(state)
        if not wait_for_exit(state, children, 5.0):
            raise HarnessError(f"processes left in {state.cgroup_relative}: {run_pids(state)}")


def supervisor_pids(state: RunState, members):
    # The supervisors are the members whose parent is outside the run's cgroups.
    supervisors = []
    for pid in members:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent not in members:
            supervisors.append(pid)
    return supervisors


def wait_for_exit(state: RunState, children, timeout):
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            child.poll()  # reap our own children so no zombie stays behind
        if not run_pids(state):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def kill_cgroups(state: RunState):
    for directory in cgroup_dirs(state.cgroup_relative):
        kill_file = directory / "cgroup.kill"
        if kill_file.exists():
            kill_file.write_text("1")
    for pid in run_pids(state):
        signal_pid(pid, signal.SIGKILL)


def signal_pid(pid, signum):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def end_ssh_masters(state: RunState):
    """Ansible's ControlPersist masters would otherwise linger for 60 s."""
    pids = ssh_pids_mentioning(str(state.run_dir))
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            signal_pid(pid, signal.SIGKILL)


def unmount_and_detach(state: RunState):
    """Volumes and overlays first, then the loop devices, then the run's tmpfs."""
    inner = [p for p in mounts_under(state.run_dir) if p != str(state.run_dir)]
    for point in inner:
        unmount(point)
    detach_loops(state.run_dir)
    if str(state.run_dir) in mounts_under(state.run_dir):
        unmount(state.run_dir)


def unmount(point):
    for _ in range(20):
        if run(["umount", point], check=False).returncode == 0:
            return
        time.sleep(0.25)
    raise HarnessError(f"cannot unmount {point}: {run(['umount', point], check=False).stderr}")


def detach_loops(run_dir: Path):
    listing = run(
        ["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"], check=False
    ).stdout
    for line in listing.splitlines():
        name, _, backing = line.strip().partition(" ")
        if backing.strip().startswith(str(run_dir) + "/"):
            run(["losetup", "--detach", name])


def remove_links(state: RunState):
    for host in state.hosts:
        delete_link(veth_name(host["name"]))
    delete_link(state.bridge)


def remove_nspawn_leftovers(state: RunState):
    # On a disk-backed /run nspawn will not delete these itself when a host reboots.
    for host in state.hosts:
        leftover = NSPAWN_RUNTIME / "propagate" / host["name"]
        if leftover.is_dir() and not mounts_under(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def remove_cgroups(state: RunState):
    for directory in cgroup_dirs(state.cgroup_relative):
        remove_cgroup_tree(directory)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the shared parent, when this was the last run


def remove_run_files(state: RunState):
    if mounts_under(state.run_dir):
        raise HarnessError(f"{state.run_dir} still has mounts; not removing it")
    shutil.rmtree(state.run_dir, ignore_errors=True)
    state.state_file.unlink(missing_ok=True)
