"""A private bridge per run: hosts talk to each other and to the machine, nothing else.

The bridge holds .1 of a 10.213.X.0/24; hosts get static addresses and no gateway, the
machine gets no forwarding or NAT for it, so no packet from a host leaves the machine.
"""

from __future__ import annotations

from pathlib import Path

from .machine import run

NETWORK_PREFIX = "10.213"


def subnet(octet: int) -> str:
    return f"{NETWORK_PREFIX}.{octet}"


def bridge_name(octet: int) -> str:
    return f"ptb{octet}"


def veth_name(host_name: str) -> str:
    # What systemd-nspawn --network-bridge calls the machine's end of a host's veth.
    return f"vb-{host_name}"[:15]


def subnet_in_use(octet: int) -> bool:
    addresses = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    return f" {subnet(octet)}." in addresses or link_exists(bridge_name(octet))


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def bridge_mac(octet: int) -> str:
    """A fixed, locally administered MAC per bridge. A Linux bridge whose address was never
    set takes the lowest MAC of its ports, so a host rebooting or re-imaged (its veth leaves
    and comes back) could change it, and the other hosts' cached ARP entry for the machine
    would go stale: their SSH and heartbeats would drop for seconds."""
    return f"02:70:74:62:{octet // 256:02x}:{octet % 256:02x}"


def create_bridge(octet: int):
    name = bridge_name(octet)
    run(["ip", "link", "add", name, "address", bridge_mac(octet), "type", "bridge"])
    run(["ip", "addr", "add", f"{subnet(octet)}.1/24", "dev", name])
    _disable_ipv6(name)
    run(["ip", "link", "set", name, "up"])
    return name


def _disable_ipv6(name: str):
    # Keeps the bridge from chattering router solicitations and link-local addresses.
    knob = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
    if knob.exists():
        knob.write_text("1")


def delete_link(name: str):
    if link_exists(name):
        run(["ip", "link", "delete", name], check=False)
