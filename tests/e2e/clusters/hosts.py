"""Turn test hosts booted with corosync (``extra_packages=("corosync",)``) into freshly
installed Proxmox nodes, as far as clustering goes: the stand-in ``pvecm`` (./pvecm), units
standing for Proxmox's services, and no corosync running (Debian starts it at boot with a
one-node config; an unclustered Proxmox node runs none)."""

from __future__ import annotations

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


def install_pvecm(host):
    """The stand-in pvecm and the service units on one host, then a fresh install's state."""
    install = "cat > /usr/bin/pvecm && chmod 0755 /usr/bin/pvecm"
    host.run(install, input=PVECM.read_text(), check=True)
    for name in PROXMOX_SERVICES:
        host.run(
            f"cat > /etc/systemd/system/{name}.service", input=UNIT.format(name=name), check=True
        )
    make_fresh(host)


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
