"""Disposable Debian 12 hosts with systemd as PID 1, booted with systemd-nspawn.

    with boot_hosts(3, volumes=1) as pool:
        pool[0].run("systemctl is-system-running")

Each run gets a tmpfs run directory, a private bridge 10.213.X.1/24, an SSH key, and one
overlayfs per host on a shared base rootfs. Teardown runs on every exit path.
"""

from __future__ import annotations

import logging
import os
import signal
import sysconfig
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from .ansible_files import write_ansible_files
from .apt_repo import AptRepo
from .base import provide_base
from .containers import Host, create_volume, launch, mount_overlay, wait_ready, write_identity
from .machine import HostsUnavailable, cgroup_dirs, run, unavailable_reason
from .network import create_bridge, subnet
from .reimage import HostProcess, reimage_host, save_pristine_upper
from .state import RunState, reap_orphaned_runs, reserve_run, tear_down

log = logging.getLogger("tests.hosts")

RUN_TMPFS_SIZE = os.environ.get("PORTAL_TEST_HOSTS_TMPFS_SIZE", "8G")


class HostPool:
    """The hosts of one run, with the files Ansible needs to reach them."""

    def __init__(
        self,
        state: RunState,
        hosts,
        key_path,
        inventory_path,
        ansible_cfg,
        processes,
        timings,
        apt_repo: AptRepo | None = None,
    ):
        self.state = state
        self.apt_repo = apt_repo
        self.hosts = hosts
        self.ssh_key_path = key_path
        self.inventory_path = inventory_path
        self.ansible_cfg = ansible_cfg
        self.timings = timings
        self._processes = processes
        self._closed = False

    run_id = property(lambda self: self.state.run_id)
    run_dir = property(lambda self: self.state.run_dir)
    bridge = property(lambda self: self.state.bridge)
    subnet = property(lambda self: f"{subnet(self.state.octet)}.0/24")

    def __iter__(self):
        return iter(self.hosts)

    def __len__(self):
        return len(self.hosts)

    def __getitem__(self, index_or_name):
        if isinstance(index_or_name, str):
            return next(h for h in self.hosts if h.name == index_or_name)
        return self.hosts[index_or_name]

    @property
    def volume_hosts(self):
        return [h for h in self.hosts if h.has_volume]

    def ansible_env(self, **extra):
        """The environment for Ansible against this run: its own ansible.cfg, and this
        venv's bin first on PATH (ansible-runner needs ansible-playbook there)."""
        path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
        return dict(os.environ, ANSIBLE_CONFIG=str(self.ansible_cfg), PATH=path, **extra)

    def wait_ready(self, host: Host, timeout=90.0):
        """Wait for a host to answer again, e.g. after a reboot or a re-image (also one
        another process did: the host is then watched through its cgroup)."""
        process = self._processes[self.hosts.index(host)]
        if process.poll() is not None:
            process = HostProcess(self.state, host.name)
        wait_ready(host, process, threading.Event(), timeout)

    def reimage(self, host: Host, first_boot_url=None, *, keep_host_keys=False, timeout=90.0):
        """Re-image the host (tests/hosts/reimage.py): its disk back to the base, new SSH
        host keys unless kept, a first-boot unit playing the script at first_boot_url;
        booted and ready when this returns. Returns the timings (seconds)."""
        timings, process = reimage_host(
            self.state,
            host.name,
            first_boot_url,
            keep_host_keys=keep_host_keys,
            ready_timeout=timeout,
        )
        index = self.hosts.index(host)
        self._processes[index].poll()  # reap the supervisor that powered off
        self._processes.append(self._processes[index])  # teardown still reaps it
        self._processes[index] = process
        return timings

    def detach(self):
        """Leave the hosts running after this process exits (the CLI's `up`)."""
        self.state.detached = True
        self.state.save()
        self._closed = True

    def close(self):
        if self._closed:
            return
        self._closed = True
        with signals_ignored():
            tear_down(self.state, self._processes)


@contextmanager
def boot_hosts(count=3, **options):
    """Boot `count` hosts; tear everything down when the block ends, however it ends."""
    with signals_interrupt():
        pool = start_pool(count, **options)
        try:
            yield pool
        finally:
            pool.close()


def start_pool(
    count=3,
    *,
    volumes=0,
    extra_packages=(),
    ready_timeout=90.0,
    apt_repo=True,
    prepare_root=None,
) -> HostPool:
    """Boot hosts and return them; the caller must close() (or detach()) the pool.

    The first `volumes` hosts get a btrfs volume with quotas at /srv/workspaces. With
    apt_repo the hosts' apt uses the local repository (apt_repo.py), built in the background
    if it is not cached yet: pool.apt_repo.wait() before installing from it. `prepare_root`
    (a callable taking a host's root path) changes each host's files before its first boot:
    part of what a re-image resets the host to (e.g. a freshly installed Proxmox node).
    """
    reason = unavailable_reason()
    if reason:
        raise HostsUnavailable(reason)
    reap_orphaned_runs()
    state = reserve_run()
    processes: list = []
    try:
        with signals_interrupt():
            repo = AptRepo(extra_packages) if apt_repo else None
            return bring_up(
                state, count, volumes, extra_packages, ready_timeout, processes, repo, prepare_root
            )
    except BaseException:
        with signals_ignored():
            tear_down(state, processes)
        raise


def bring_up(
    state,
    count,
    volumes,
    extra_packages,
    ready_timeout,
    processes,
    repo: AptRepo | None,
    prepare_root=None,
) -> HostPool:
    started = time.monotonic()
    if repo:
        repo.start_build()  # returns at once; hosts see the repository once it is published
    mount_run_tmpfs(state.run_dir)
    key_path = make_ssh_key(state.run_dir / "ssh", state.run_id)
    source = provide_base(state.run_dir / "base", extra_packages)
    base_done = time.monotonic()
    create_bridge(state.octet)
    hosts = plan_hosts(state, count, volumes, key_path)
    public_key = key_path.with_suffix(".pub").read_text()
    for host, entry in zip(hosts, state.hosts, strict=True):
        prepare_host(host, state.run_dir / "base", hosts, public_key)
        if repo:
            repo.prepare_host(host.root)
            host.read_only_binds = (repo.bind(),)
        entry["read_only_binds"] = [[str(a), str(b)] for a, b in host.read_only_binds]
        if prepare_root is not None:
            prepare_root(host.root)
        save_pristine_upper(host)  # what a re-image resets the host to
        state.save()
        cgroups = cgroup_dirs(f"{state.cgroup_relative}/{host.name}")
        processes.append(launch(host, state.bridge, cgroups))
    wait_all_ready(hosts, processes, ready_timeout)
    inventory_path, cfg_path = write_ansible_files(state.run_dir / "ansible", hosts, key_path)
    done = time.monotonic()
    timings = {
        "base": round(base_done - started, 1),
        "base_source": source,
        "boot": round(done - base_done, 1),
        "total": round(done - started, 1),
    }
    log.info(
        "run %s: %d hosts up in %.1f s (base %s in %.1f s)",
        state.run_id,
        count,
        timings["total"],
        source,
        timings["base"],
    )
    return HostPool(state, hosts, key_path, inventory_path, cfg_path, processes, timings, repo)


def mount_run_tmpfs(run_dir: Path):
    # One tmpfs per run: fast to fill, and one umount frees it all.
    run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"mode=0755,size={RUN_TMPFS_SIZE}",
            "portal-test-hosts",
            run_dir,
        ]
    )


def make_ssh_key(directory: Path, run_id: str) -> Path:
    directory.mkdir(mode=0o700)
    key_path = directory / "id_ed25519"
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"portal-test-hosts-{run_id}",
            "-f",
            key_path,
        ]
    )
    return key_path


def plan_hosts(state: RunState, count, volumes, key_path):
    hosts = [
        Host(
            name=f"t{state.octet}-host{i}",
            address=f"{subnet(state.octet)}.{10 + i}",
            ssh_key_path=key_path,
            host_dir=state.run_dir / "hosts" / f"t{state.octet}-host{i}",
            has_volume=i <= volumes,
        )
        for i in range(1, count + 1)
    ]
    state.hosts = [
        {"name": h.name, "address": h.address, "has_volume": h.has_volume} for h in hosts
    ]
    state.save()
    return hosts


def prepare_host(host: Host, base: Path, all_hosts, public_key):
    mount_overlay(host, base)
    write_identity(host, all_hosts, public_key)
    if host.has_volume:
        create_volume(host)


def wait_all_ready(hosts, processes, timeout):
    cancelled = threading.Event()
    with ThreadPoolExecutor(max_workers=len(hosts)) as executor:
        futures = [
            executor.submit(wait_ready, h, p, cancelled, timeout)
            for h, p in zip(hosts, processes, strict=True)
        ]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            cancelled.set()  # lets the other waiters stop within a second
            raise


@contextmanager
def signals_interrupt():
    """SIGTERM and SIGHUP act like Ctrl-C, so `finally` blocks (teardown) run."""

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    with signal_handlers((signal.SIGTERM, signal.SIGHUP), interrupt):
        yield


@contextmanager
def signals_ignored():
    """A second Ctrl-C must not cut a teardown short and leave mounts behind."""
    with signal_handlers((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), signal.SIG_IGN):
        yield


@contextmanager
def signal_handlers(signals, handler):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
