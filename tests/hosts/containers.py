"""One test host: an overlay on the base, its identity, its nspawn supervisor, its SSH."""

from __future__ import annotations

import logging
import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .machine import HarnessError, cgroup_pids, run

log = logging.getLogger("tests.hosts")

READY_STATES = ("running", "degraded")
SUPERVISE_SH = Path(__file__).with_name("supervise.sh")
VOLUME_MOUNT_POINT = "/srv/workspaces"
VOLUME_SIZE = "4G"  # sparse; room to write past a 1 GB workspace quota
SSH_OPTIONS = (
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=5",
)


class Supervisor(Protocol):
    """A host's supervisor: its Popen, or (reimage.HostProcess) its cgroup."""

    returncode: int | None

    def poll(self) -> int | None: ...


@dataclass
class Host:
    """A booted test host, reachable over SSH as root (and as `deploy` with sudo)."""

    name: str
    address: str
    ssh_key_path: Path
    host_dir: Path
    has_volume: bool = False
    ssh_user: str = "root"
    ssh_port: int = 22
    read_only_binds: tuple = ()  # (machine path, host path) pairs, e.g. the apt repositories

    @property
    def root(self) -> Path:
        """The host's filesystem as seen from the machine."""
        return self.host_dir / "root"

    @property
    def volume_dir(self) -> Path:
        """The machine-side mount point of the host's btrfs volume."""
        return self.host_dir.parent.parent / "volumes" / self.name

    @property
    def volume_path(self) -> str | None:
        return VOLUME_MOUNT_POINT if self.has_volume else None

    @property
    def console_log(self) -> Path:
        return self.host_dir / "console.log"

    def ssh_command(self, command, user="root"):
        if not isinstance(command, str):
            command = shlex.join(str(part) for part in command)
        return [
            "ssh",
            *SSH_OPTIONS,
            "-i",
            str(self.ssh_key_path),
            "-p",
            str(self.ssh_port),
            f"{user}@{self.address}",
            command,
        ]

    def run(self, command, *, user="root", check=False, timeout=120, input=None):
        """Run a shell command (string) or argv (list) on the host over SSH."""
        return subprocess.run(
            self.ssh_command(command, user),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            input=input,
        )

    def port_open(self, port, timeout=1.0) -> bool:
        try:
            with socket.create_connection((self.address, port), timeout=timeout):
                return True
        except OSError:
            return False


def mount_overlay(host: Host, base: Path):
    upper, work = host.host_dir / "upper", host.host_dir / "work"
    for directory in (upper, work, host.root):
        directory.mkdir(parents=True, exist_ok=True)
    run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={base},upperdir={upper},workdir={work}",
            host.root,
        ]
    )


def write_identity(host: Host, all_hosts, public_key: str):
    """Name, address and SSH keys, written into the overlay's upper layer before boot."""
    own_host_keys(host.root)
    write(host.root / "etc/hostname", f"{host.name}\n")
    write(host.root / "etc/hosts", hosts_file(all_hosts))
    write(host.root / "etc/systemd/network/10-host0.network", network_file(host))
    authorize_key(host.root, "root", public_key)
    authorize_key(host.root, "deploy", public_key)


def own_host_keys(root: Path):
    """SSH host keys of this host's own, as an installer makes them (the base image's would
    be the same on every host, and a key pinned for one would pass for another). ed25519 and
    ECDSA only: an RSA key costs a second of CPU per host and boot."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for kind in ("ed25519", "ecdsa"):
        key = root / f"etc/ssh/ssh_host_{kind}_key"
        run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{root.name}", "-f", key])


def hosts_file(all_hosts):
    # Every host knows every other by name (fleet playbooks), and sudo finds its own name.
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{h.address} {h.name}" for h in all_hosts]
    return "\n".join(lines) + "\n"


def network_file(host: Host):
    # No Gateway=: the hosts have no route off the bridge.
    return (
        "[Match]\nName=host0\n\n"
        f"[Network]\nAddress={host.address}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )


def authorize_key(root: Path, user: str, public_key: str):
    uid, gid, home = passwd_entry(root, user)
    ssh_dir = root / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    write(ssh_dir / "authorized_keys", public_key, mode=0o600)
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        # Numeric ids from the host's own passwd: the machine's may differ.
        os.chown(path, uid, gid)


def passwd_entry(root: Path, user: str):
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3]), fields[5]
    raise HarnessError(f"no user {user} in the base rootfs")


def write(path: Path, text: str, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def create_volume(host: Host):
    """A btrfs filesystem with quotas on, bound into the host at /srv/workspaces.

    This kernel has no ext4/XFS quota support; btrfs qgroups make quota tests real.
    """
    image = host.volume_dir.with_suffix(".img")
    image.parent.mkdir(parents=True, exist_ok=True)
    run(["truncate", "-s", VOLUME_SIZE, image])
    run(["mkfs.btrfs", "-q", "-L", f"ws-{host.name}"[:255], image])
    loop = run(["losetup", "--find", "--show", image]).stdout.strip()
    host.volume_dir.mkdir(exist_ok=True)
    run(["mount", "-t", "btrfs", loop, host.volume_dir])
    run(["btrfs", "quota", "enable", host.volume_dir])


def nspawn_command(host: Host, bridge: str):
    command = [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        f"--directory={host.root}",
        f"--machine={host.name}",
        # No systemd on the machine to register with; stay in the cgroup we were given.
        "--register=no",
        "--keep-unit",
        f"--network-bridge={bridge}",
        "--console=passive",
        "--link-journal=no",
    ]
    if host.has_volume:
        command.append(f"--bind={host.volume_dir}:{VOLUME_MOUNT_POINT}")
    command += [f"--bind-ro={source}:{target}" for source, target in host.read_only_binds]
    return command


def launch(host: Host, bridge: str, cgroups) -> subprocess.Popen:
    """Start the host's supervisor in its own session, so it outlives a detaching CLI."""
    for directory in cgroups:
        directory.mkdir(parents=True, exist_ok=True)
    with open(host.console_log, "ab") as console:
        process = subprocess.Popen(
            ["bash", SUPERVISE_SH, *nspawn_command(host, bridge)],
            env={
                "PATH": "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin",
                "SUPERVISE_CGROUPS": " ".join(str(d) for d in cgroups),
            },
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    wait_until_in_cgroup(process, cgroups[0])
    return process


def wait_until_in_cgroup(process: subprocess.Popen, cgroup: Path, timeout=5.0):
    # Teardown finds the supervisor through its cgroup: be sure it got there.
    deadline = time.monotonic() + timeout
    while process.pid not in cgroup_pids(cgroup):
        if process.poll() is not None or time.monotonic() > deadline:
            raise HarnessError(f"supervisor did not enter {cgroup} (exit {process.poll()})")
        time.sleep(0.01)


def wait_ready(host: Host, process: Supervisor, cancelled, timeout=90.0):
    """Until SSH answers and systemd reports the boot finished (running or degraded)."""
    deadline = time.monotonic() + timeout
    while True:
        if cancelled.is_set():
            raise HarnessError(f"{host.name}: boot cancelled")
        if process.poll() is not None:
            raise HarnessError(
                f"{host.name}: nspawn exited {process.returncode}\n" + console_tail(host)
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HarnessError(
                f"{host.name}: not ready after {timeout:.0f} s\n" + console_tail(host)
            )
        if host.port_open(22, timeout=0.5) and system_state(host, remaining) in READY_STATES:
            return
        time.sleep(0.2)


def system_state(host: Host, remaining):
    try:
        result = host.run("systemctl is-system-running --wait", timeout=min(remaining, 5))
    except subprocess.TimeoutExpired:
        return "timeout"
    return result.stdout.strip()


def console_tail(host: Host, lines=30):
    try:
        return "\n".join(host.console_log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"
