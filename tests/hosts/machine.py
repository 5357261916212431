"""What the test hosts need from the machine they run on: commands, packages, cgroups."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger("tests.hosts")

MACHINE_PACKAGES = (
    "debootstrap",
    "systemd-container",
    "iproute2",
    "openssh-client",
    "zstd",
    "btrfs-progs",
    "apt-utils",  # apt-ftparchive indexes the hosts' local apt repository (apt_repo.py)
    "ipmitool",  # the ipmi power driver's client, tested against ipmi_sim (ipmi_sim.py)
    "openipmi",  # ipmi_sim: a BMC simulator whose power actions re-image a test host
)
# One command per package above tells whether it is there (openssh-server is deliberately
# absent: the machine itself must never run an SSH server).
MACHINE_COMMANDS = (
    "debootstrap",
    "systemd-nspawn",
    "ip",
    "ssh",
    "ssh-keygen",
    "zstd",
    "mkfs.btrfs",
    "apt-ftparchive",
    "ipmitool",
    "ipmi_sim",
)

_apt_updated = False


class HarnessError(RuntimeError):
    """Something on the machine did not do what the harness needed."""


class HostsUnavailable(HarnessError):
    """This machine cannot run test hosts at all (not root, no namespaces, no packages)."""


def run(args, *, check=True, timeout=300, input=None, env=None):
    """Run a command, capturing output; on failure raise with its stderr in the message.

    The command gets its own process group, killed whole if we are interrupted, so no
    debootstrap or dpkg keeps running into a run directory being torn down.
    """
    args = [str(a) for a in args]
    with subprocess.Popen(
        args,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if check and process.returncode != 0:
        command = " ".join(args)
        raise HarnessError(f"{command} exited {process.returncode}: {stderr.strip()[-2000:]}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def missing_commands():
    return [c for c in MACHINE_COMMANDS if not shutil.which(c, path=_admin_path())]


def _admin_path():
    # Non-login shells of some CI runners lack the sbin directories.
    return os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"


def ensure_machine_packages():
    """Install the machine-side tools once when any is missing."""
    os.environ["PATH"] = _admin_path()
    if not missing_commands():
        return
    log.info("installing machine packages: %s", " ".join(MACHINE_PACKAGES))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    global _apt_updated
    if not _apt_updated:
        run(["apt-get", "update"], env=env, timeout=600)
        _apt_updated = True
    run(
        [
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=300",
            "install",
            "-y",
            "--no-install-recommends",
            *MACHINE_PACKAGES,
        ],
        env=env,
        timeout=900,
    )
    if missing_commands():
        raise HostsUnavailable(f"still missing after apt-get install: {missing_commands()}")


def unavailable_reason():
    """Why test hosts cannot run here, or None when they can."""
    if os.uname().sysname != "Linux":
        return "test hosts need Linux"
    if os.geteuid() != 0:
        return "test hosts need root (systemd-nspawn, mounts, bridges)"
    try:
        ensure_machine_packages()
    except (HarnessError, subprocess.TimeoutExpired, OSError) as error:
        return f"cannot install the machine packages for test hosts: {error}"
    if not cgroup_roots():
        return "no writable cgroup hierarchy for systemd-nspawn under /sys/fs/cgroup"
    probe = run(
        ["unshare", "--mount", "--net", "--pid", "--uts", "--ipc", "--fork", "true"],
        check=False,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot create namespaces for systemd-nspawn: {probe.stderr.strip()}"
    return None


def cgroup_roots():
    """The cgroup hierarchies a container's processes must be placed in.

    Without systemd as PID 1 nspawn (--register=no --keep-unit) makes its payload cgroup
    under its current one, so each host needs its own directory in every hierarchy
    systemd inside the container looks at: the unified one and the named systemd one.
    """
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        candidates = [base]
    else:
        candidates = [base / "unified", base / "systemd"]
    return [c for c in candidates if (c / "cgroup.procs").exists() and os.access(c, os.W_OK)]


def cgroup_dirs(relative):
    return [root / relative for root in cgroup_roots()]


def cgroup_pids(directory: Path):
    """All pids in a cgroup directory and its children."""
    pids = set()
    # os.walk, unlike Path.rglob, shrugs off directories nspawn removes as we walk.
    for parent, _dirs, files in os.walk(directory):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in Path(parent, "cgroup.procs").read_text().split())
    return pids


def remove_cgroup_tree(directory: Path, attempts=20):
    """rmdir a cgroup and its children, deepest first (their files go with them).

    nspawn trims its own cgroups as it exits, concurrently: vanished ones are fine, busy
    ones (a process still leaving) are retried.
    """
    for _ in range(attempts):
        if not directory.exists():
            return
        try:
            rmdir_deepest_first(directory)
        except OSError:
            time.sleep(0.1)
    if directory.exists():
        raise HarnessError(f"cannot remove cgroup {directory}")


def rmdir_deepest_first(directory: Path):
    for parent, _dirs, _files in os.walk(directory, topdown=False):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(parent)


def mounts_under(prefix: Path):
    """Mount points at or below prefix, deepest first (so they can be unmounted in order)."""
    points = []
    prefix_text = str(prefix)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix_text or point.startswith(prefix_text + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def ssh_pids_mentioning(text: str):
    """ssh processes whose command line mentions text (here: a run directory).

    These are the ControlPersist masters Ansible leaves behind for 60 s; anything else
    that merely mentions the run directory (a user's `tail -f`) is not ours to end.
    """
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if comm == "ssh" and text in cmdline:
            found.add(int(entry.name))
    return found


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
