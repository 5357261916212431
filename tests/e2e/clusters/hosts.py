"""Turn test hosts booted with corosync (``extra_packages=("corosync",)``) into freshly
installed Proxmox nodes, as far as clustering goes: the stand-in ``pvecm`` (./pvecm), units
standing for Proxmox's services, and no corosync running (Debian starts it at boot with a
one-node config; an unclustered Proxmox node runs none).

``install_pvecm(host)`` on a running host; ``bake_stand_in(host.root)`` on a re-imaged host's
root before it boots (after tests.hosts.reimage's disk reset) so it comes up as a fresh
Proxmox node; ``make_fresh(host)`` leaves any cluster (what a re-image leaves, fast);
``set_fault(host, mode)`` switches the stand-in's fault modes (see ./pvecm)."""

from __future__ import annotations

import shutil
from pathlib import Path

PVECM = Path(__file__).with_name("pvecm")
FAULT_FILE = "/etc/pvecm-fault"
PROXMOX_SERVICES = ("pve-cluster", "pvedaemon", "pveproxy")

# Trivial units, so readiness checks have real units to find active (or not).
UNIT = """[Unit]
Description=Stand-in for Proxmox VE's {name} (tests/e2e/clusters)
After=network.target

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

FRESH_INSTALL = """
set -eu
systemctl disable --now --quiet corosync
rm -f /etc/corosync/corosync.conf /etc/corosync/authkey {fault}
rm -rf /etc/pve
mkdir -p /etc/pve
systemctl daemon-reload
systemctl enable --now --quiet {services}
"""


def bake_stand_in(root: Path):
    """Make the root filesystem at `root` (a host's merged overlay, seen from the machine: a
    booted host's `host.root`, or a re-imaged one's before it boots) a freshly installed
    Proxmox node: the stand-in pvecm, the service units enabled, corosync disabled and
    Debian's one-node config gone. Deleting through the merged overlay leaves whiteouts, so
    the base image is untouched."""
    write(root / "usr/bin/pvecm", PVECM.read_text(), 0o755)
    units = root / "etc/systemd/system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for name in PROXMOX_SERVICES:
        write(units / f"{name}.service", UNIT.format(name=name), 0o644)
        (wants / f"{name}.service").unlink(missing_ok=True)
        (wants / f"{name}.service").symlink_to(f"/etc/systemd/system/{name}.service")
    (wants / "corosync.service").unlink(missing_ok=True)
    for leftover in ("etc/corosync/corosync.conf", "etc/corosync/authkey", FAULT_FILE[1:]):
        (root / leftover).unlink(missing_ok=True)
    shutil.rmtree(root / "etc/pve", ignore_errors=True)
    (root / "etc/pve").mkdir(mode=0o755)


def write(path: Path, text: str, mode: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def install_pvecm(host):
    """The stand-in on a running host (bake_stand_in on its root), its units started, the
    corosync Debian started at boot stopped."""
    bake_stand_in(host.root)
    services = " ".join(PROXMOX_SERVICES)
    script = f"systemctl daemon-reload && systemctl stop corosync && systemctl start {services}"
    host.run(script, check=True)


def make_fresh(host):
    """What a node looks like right after a Proxmox install: in no cluster, services up."""
    script = FRESH_INSTALL.format(fault=FAULT_FILE, services=" ".join(PROXMOX_SERVICES))
    host.run(script, check=True)


def set_fault(host, mode: str | None):
    """Switch the stand-in's fault mode on a host (join-hang, wrong-authkey, already-member,
    address-in-use), or off with None."""
    if mode:
        host.run(f"echo {mode} > {FAULT_FILE}", check=True)
    else:
        host.run(f"rm -f {FAULT_FILE}", check=True)
