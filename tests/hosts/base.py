"""The Debian 12 root filesystem every test host starts from, cached as a zstd tarball."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
from pathlib import Path

from .machine import HarnessError, run

log = logging.getLogger("tests.hosts")

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_CACHE_DIR = "/var/cache/portal-test-hosts"

# Hosts have no route out: everything a role installs must already be here.
# (code-server's artifact, tests/hosts/code_server.py, needs libgssapi-krb5-2 and libkrb5-3
# at runtime: openssh-server depends on both; its build checks them on this base.)
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "libsystemd0",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "procps",
    "curl",
    "ca-certificates",
    "acl",
    "btrfs-progs",
)

# Run inside the fresh rootfs. Part of the cache key, so editing it rebuilds the base.
CONFIGURE_BASE_SH = r"""
set -eu
export SYSTEMD_OFFLINE=1
systemctl enable systemd-networkd.service ssh.service
useradd --create-home --shell /bin/bash --groups sudo deploy
echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/deploy
# Empty machine-id: each host gets its own at boot. nspawn -M names the host.
: > /etc/machine-id
rm -f /etc/hostname /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log
"""

TAR_FLAGS = ("--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls")


def cache_dir():
    return Path(os.environ.get("PORTAL_TEST_HOSTS_CACHE", DEFAULT_CACHE_DIR))


def base_packages(extra=()):
    from_env = re.split(r"[\s,]+", os.environ.get("PORTAL_TEST_HOSTS_EXTRA_PACKAGES", "").strip())
    return tuple(sorted(set(BASE_PACKAGES) | set(extra) | {p for p in from_env if p}))


def cache_key(packages):
    recipe = {"suite": SUITE, "packages": list(packages), "configure": CONFIGURE_BASE_SH}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


def cached_tarball(packages):
    return cache_dir() / f"{SUITE}-minbase-{cache_key(packages)}.tar.zst"


def debian_mirror():
    """The Debian mirror this machine's apt uses, so the hosts' packages come from the same."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        match = re.search(r"^URIs:\s*(\S+)", deb822.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        match = re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", legacy.read_text(), re.MULTILINE
        )
        if match:
            return match.group(1)
    return DEFAULT_MIRROR


def provide_base(target: Path, extra_packages=()):
    """Fill target with the base rootfs: from the cache, or built (and then cached).

    Returns "cached" or "built". The cache lock keeps concurrent runs from building twice.
    """
    packages = base_packages(extra_packages)
    tarball = cached_tarball(packages)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with open(tarball.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            extract_tarball(tarball, target)
            return "cached"
        build_rootfs(target, packages)
        write_tarball(target, tarball)
        return "built"


def build_rootfs(target: Path, packages):
    mirror = debian_mirror()
    log.info("building the %s base from %s (once; cached afterwards)", SUITE, mirror)
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(packages)}",
            SUITE,
            target,
            mirror,
        ],
        timeout=900,
    )
    run(["chroot", target, "/bin/sh", "-c", CONFIGURE_BASE_SH], timeout=300)


def write_tarball(source: Path, tarball: Path):
    partial = tarball.with_suffix(f".partial-{os.getpid()}")
    try:
        run(
            [
                "sh",
                "-c",
                f'tar {shlex.join(TAR_FLAGS)} -C "$1" -cf - . | zstd -q -T0 -6 -o "$2"',
                "sh",
                source,
                partial,
            ],
            timeout=600,
        )
        partial.rename(tarball)
    finally:
        partial.unlink(missing_ok=True)
    log.info("cached the base as %s", tarball)


def extract_tarball(tarball: Path, target: Path):
    target.mkdir(parents=True, exist_ok=True)
    result = run(
        [
            "sh",
            "-c",
            f'zstd -q -dc -T0 "$1" | tar {shlex.join(TAR_FLAGS)} -xpf - -C "$2"',
            "sh",
            tarball,
            target,
        ],
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        # A damaged cache file must not poison every later run.
        tarball.unlink(missing_ok=True)
        raise HarnessError(f"cannot extract {tarball} (removed it): {result.stderr.strip()}")
