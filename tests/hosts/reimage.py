"""Re-image a test host: power it off, reset its disk to the base, boot it again.

What a reinstall over the network does to a bare-metal node, done to a container: the
host's overlay upper layer goes back to what it was before its first boot (the base image
plus the identity the harness wrote: name, address, authorized keys, apt source), so any
file written on the host since is gone. Like a real installer it gets new SSH host keys
(unless told to keep them), and with a first-boot URL a systemd unit fetches the
post-install script from it and runs it once, as a node's installer would at its end.

Works from any process (the run's record says everything): the pytest process that owns
the run, `python -m tests.hosts reimage`, ipmi_sim's chassis control, a Celery worker.
The host's network MAC stays: systemd-nspawn derives host0's from the machine name.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .containers import Host, launch, mount_overlay, wait_ready
from .machine import HarnessError, cgroup_dirs, cgroup_pids, run
from .state import RunState, signal_pid, state_root, supervisor_pids

log = logging.getLogger("tests.hosts")

REPO_ROOT = Path(__file__).resolve().parents[2]
PRISTINE = "upper.pristine"  # the upper layer as the harness wrote it, before the first boot
FIRST_BOOT_UNIT = "portal-first-boot.service"
FIRST_BOOT_SCRIPT = "usr/local/sbin/portal-first-boot"
FIRST_BOOT_URL_FILE = "etc/portal-first-boot.url"
FIRST_BOOT_TRIES, FIRST_BOOT_PAUSE = 60, 2  # fetch the script for up to about 2 minutes
STOP_TIMEOUT = 15.0

FIRST_BOOT_SH = f"""#!/bin/sh
# Written by the test-host harness at a re-image: fetch the post-install script once the
# network is up and run it, as a node's installer does at its end. {{mac}} in the URL
# becomes host0's MAC (the provisioning NIC's, by which the portal knows the node).
set -u
mac=$(cat /sys/class/net/host0/address)
url=$(sed "s/{{mac}}/$mac/g" /{FIRST_BOOT_URL_FILE})
script=/run/portal-post-install.sh
tries=0
until curl -fsS --max-time 10 -o "$script" "$url"; do
    tries=$((tries + 1))
    if [ "$tries" -ge {FIRST_BOOT_TRIES} ]; then
        echo "portal-first-boot: no post-install script from $url after $tries tries" >&2
        exit 1
    fi
    sleep {FIRST_BOOT_PAUSE}
done
touch /var/lib/portal-first-boot.done
exec sh "$script"
"""

FIRST_BOOT_SERVICE = f"""[Unit]
Description=Post-install script from the provisioning portal (first boot after a re-image)
Wants=network-online.target
After=network-online.target ssh.service
ConditionPathExists=!/var/lib/portal-first-boot.done

[Service]
# Not oneshot: the boot is finished (and the host ready) while the script still runs.
Type=exec
ExecStart=/{FIRST_BOOT_SCRIPT}
StandardOutput=append:/var/log/portal-first-boot.log
StandardError=append:/var/log/portal-first-boot.log

[Install]
WantedBy=multi-user.target
"""


class HostProcess:
    """A host's supervisor seen through its cgroup, whichever process started it: what
    wait_ready needs (poll, returncode) for a host booted by another process."""

    def __init__(self, state: RunState, name: str):
        self.state, self.name = state, name
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if host_pids(self.state, self.name):
            return None
        self.returncode = -1
        return self.returncode


def load_run(run_id: str) -> RunState:
    path = state_root() / f"{run_id}.json"
    if not path.exists():
        raise HarnessError(f"no test host run {run_id} (see `python -m tests.hosts status`)")
    return RunState.load(path)


def host_of(state: RunState, name: str) -> Host:
    for entry in state.hosts:
        if entry["name"] == name:
            return Host(
                name=entry["name"],
                address=entry["address"],
                ssh_key_path=state.run_dir / "ssh" / "id_ed25519",
                host_dir=state.run_dir / "hosts" / entry["name"],
                has_volume=entry["has_volume"],
                read_only_binds=tuple(tuple(b) for b in entry.get("read_only_binds", ())),
            )
    names = ", ".join(e["name"] for e in state.hosts)
    raise HarnessError(f"run {state.run_id} has no host {name} (hosts: {names})")


def host_cgroups(state: RunState, name: str):
    return cgroup_dirs(f"{state.cgroup_relative}/{name}")


def host_pids(state: RunState, name: str):
    pids = set()
    for directory in host_cgroups(state, name):
        pids |= cgroup_pids(directory)
    return pids


def save_pristine_upper(host: Host):
    """Keep the upper layer as the harness wrote it (before the first boot) for re-images."""
    run(["cp", "-a", host.host_dir / "upper", host.host_dir / PRISTINE])


@contextmanager
def host_lock(host: Host, timeout=600.0):
    """One power action at a time per host (ipmi_sim, a worker and a test may all ask)."""
    with open(host.host_dir / ".power.lock", "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{host.name}: another power action holds it") from None
                time.sleep(0.1)
        yield


def power_off(state: RunState, host: Host, timeout=STOP_TIMEOUT):
    """SIGTERM the supervisor (a clean poweroff of the host); kill what is left after it."""
    for pid in supervisor_pids(state, host_pids(state, host.name)):
        signal_pid(pid, signal.SIGTERM)
    if wait_empty(state, host.name, timeout):
        return
    log.warning("%s: no clean poweroff in %.0f s, killing", host.name, timeout)
    for directory in host_cgroups(state, host.name):
        if (directory / "cgroup.kill").exists():
            (directory / "cgroup.kill").write_text("1")
    for pid in host_pids(state, host.name):
        signal_pid(pid, signal.SIGKILL)
    if not wait_empty(state, host.name, 5):
        raise HarnessError(f"{host.name}: processes left after SIGKILL")


def wait_empty(state: RunState, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while host_pids(state, name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def power_on(state: RunState, host: Host, ready_timeout=90.0):
    """Boot the host as its disk is (no reset) unless it runs; return its supervisor."""
    if host_pids(state, host.name):
        return None
    process = launch(host, state.bridge, host_cgroups(state, host.name))
    wait_ready(host, HostProcess(state, host.name), threading.Event(), ready_timeout)
    return process


def reset_disk(state: RunState, host: Host):
    """The overlay's upper layer back to the pristine copy: the base, as before first boot."""
    pristine = host.host_dir / PRISTINE
    if not pristine.is_dir():
        raise HarnessError(f"{host.name}: no {PRISTINE} (booted by an older harness?)")
    unmount_root(host)
    for directory in ("upper", "work"):
        shutil.rmtree(host.host_dir / directory)
    run(["cp", "-a", pristine, host.host_dir / "upper"])
    mount_overlay(host, state.run_dir / "base")


def unmount_root(host: Host):
    for _ in range(40):
        if run(["umount", host.root], check=False).returncode == 0:
            return
        time.sleep(0.25)
    raise HarnessError(f"{host.name}: cannot unmount {host.root} (busy)")


def host_keys(host: Host) -> dict[str, tuple[bytes, int]]:
    return {
        key.name: (key.read_bytes(), key.stat().st_mode & 0o777)
        for key in (host.root / "etc/ssh").glob("ssh_host_*")
    }


def restore_host_keys(host: Host, keys: dict[str, tuple[bytes, int]]):
    for key in (host.root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for name, (content, mode) in keys.items():
        path = host.root / "etc/ssh" / name
        path.write_bytes(content)
        path.chmod(mode)


def new_host_keys(host: Host):
    """What an installer does: host keys of this installation's own."""
    for key in (host.root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    run(["ssh-keygen", "-A", "-f", host.root])


def install_first_boot(host: Host, url: str):
    root = host.root
    write(root / FIRST_BOOT_URL_FILE, url.strip() + "\n", 0o644)
    write(root / FIRST_BOOT_SCRIPT, FIRST_BOOT_SH, 0o755)
    write(root / "etc/systemd/system" / FIRST_BOOT_UNIT, FIRST_BOOT_SERVICE, 0o644)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / FIRST_BOOT_UNIT).symlink_to(f"/etc/systemd/system/{FIRST_BOOT_UNIT}")


def write(path: Path, text: str, mode: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def reimage_host(
    state: RunState,
    name: str,
    first_boot_url: str | None = None,
    *,
    keep_host_keys=False,
    ready_timeout=90.0,
):
    """Power off, reset the disk, (new host keys, first-boot unit), boot, wait until ready.

    Returns (timings in seconds, the new supervisor process)."""
    if first_boot_url is not None and not first_boot_url.startswith(("http://", "https://")):
        raise HarnessError(f"first boot URL must be http(s): {first_boot_url!r}")
    host = host_of(state, name)
    started = time.monotonic()
    with host_lock(host):
        power_off(state, host)
        stopped = time.monotonic()
        kept = host_keys(host) if keep_host_keys else {}
        reset_disk(state, host)
        if keep_host_keys:
            restore_host_keys(host, kept)
        else:
            new_host_keys(host)
        if first_boot_url:
            install_first_boot(host, first_boot_url)
        reset = time.monotonic()
        process = launch(host, state.bridge, host_cgroups(state, host.name))
        wait_ready(host, HostProcess(state, host.name), threading.Event(), ready_timeout)
    done = time.monotonic()
    timings = {
        "power_off": round(stopped - started, 1),
        "reset": round(reset - stopped, 1),
        "boot": round(done - reset, 1),
        "total": round(done - started, 1),
    }
    log.info("%s re-imaged and ready in %.1f s %s", name, timings["total"], timings)
    return timings, process


def host_mac(host: Host) -> str:
    result = host.run("cat /sys/class/net/host0/address", timeout=30)
    if result.returncode != 0:
        raise HarnessError(f"{host.name}: cannot read host0's MAC: {result.stderr.strip()}")
    return result.stdout.strip()


def harness_command(*args: str) -> list[str]:
    """argv of `python -m tests.hosts ARGS` that works from any directory (a power driver's
    command option: the test-host driver runs it without a shell)."""
    return ["env", "-C", str(REPO_ROOT), sys.executable, "-m", "tests.hosts", *args]


def reimage_command(run_id: str, host: str, first_boot_url: str | None = None) -> list[str]:
    command = harness_command("reimage", "--run", run_id, "--host", host)
    return [*command, "--first-boot-url", first_boot_url] if first_boot_url else command


def power_state_command(run_id: str, host: str) -> list[str]:
    return harness_command("power", "--run", run_id, "--host", host, "state")
