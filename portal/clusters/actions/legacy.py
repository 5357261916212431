"""The old system's ``registered-nodes.json``, imported: every entry is checked first, then
all are written in one transaction (a bad file imports nothing). Idempotent: a node is
found by its MAC and brought to the file's values; an import of the same file again changes
nothing.

A new entry becomes an inventory node (name: the short hostname; address: the IP; purpose
``proxmox_node``) with its cluster profile; its BMC is not in the old file, so the power
driver is ``--power-driver`` and the BMC is filled in by an admin before a reprovision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.clusters.choices import LegacyStatus
from portal.clusters.models import Cluster, ClusterNode
from portal.clusters.naming import normalise_mac
from portal.clusters.power import DRIVER_CHOICES
from portal.core.errors import PortalError
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Credential, Node, name_validator

FIELDS = ("hostname", "ip", "mac", "registered_at", "reprovision_status")
MAX_PROBLEMS = 20


class ImportRefused(PortalError):
    def __init__(self, problems: list[str]):
        shown = problems[:MAX_PROBLEMS]
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        super().__init__("; ".join(shown) + more, field="file", code="invalid_file")
        self.problems = problems


@dataclass
class Entry:
    mac: str
    hostname: str
    ip: str
    registered_at: datetime | None
    reprovision_status: str
    reprovision_started: datetime | None
    last_update: datetime | None


@dataclass
class Imported:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _when(value: Any, where: str, problems: list[str]) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        problems.append(f"{where}: not an ISO 8601 time: {value!r}")
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def check_entry(key: Any, value: Any, problems: list[str]) -> Entry | None:
    where = f"entry {key!r}"
    if not isinstance(value, dict):
        problems.append(f"{where}: not an object")
        return None
    before = len(problems)
    try:
        mac = normalise_mac(key)
        if "mac" in value and normalise_mac(value["mac"]) != mac:
            problems.append(f"{where}: its mac {value['mac']!r} is not its key")
    except ValueError:
        problems.append(f"{where}: not a MAC address")
        mac = ""
    hostname = value.get("hostname")
    short = hostname.split(".")[0].lower() if isinstance(hostname, str) else ""
    try:
        name_validator(short)
    except ValidationError:
        problems.append(f"{where}: hostname {hostname!r} is not a node name")
    try:
        ip = str(ip_address(value.get("ip")))  # type: ignore[arg-type]
    except ValueError:
        problems.append(f"{where}: ip {value.get('ip')!r} is not an IP address")
        ip = ""
    if value.get("type", "proxmox") != "proxmox":
        problems.append(f"{where}: type {value.get('type')!r} is not 'proxmox'")
    status = value.get("reprovision_status") or ""
    if status and status not in LegacyStatus.values:
        problems.append(f"{where}: reprovision_status {status!r} is not one of the old values")
    times = {
        name: _when(value.get(name), f"{where}: {name}", problems)
        for name in ("registered_at", "reprovision_started", "last_update")
    }
    if len(problems) > before:
        return None
    return Entry(mac=mac, hostname=str(hostname), ip=ip, reprovision_status=status, **times)


def check_file(data: Any) -> list[Entry]:
    if not isinstance(data, dict):
        raise ImportRefused(["the file must hold one JSON object keyed by MAC"])
    problems: list[str] = []
    entries = [check_entry(key, value, problems) for key, value in data.items()]
    macs = [entry.mac for entry in entries if entry is not None]
    twice = sorted({mac for mac in macs if macs.count(mac) > 1})
    if twice:
        problems.append(f"MAC given twice: {', '.join(twice)}")
    if problems:
        raise ImportRefused(problems)
    return [entry for entry in entries if entry is not None]


def import_registered_nodes(
    data: Any,
    *,
    cluster: Cluster | None = None,
    credential: Credential | None = None,
    power_driver: str = "ipmi",
) -> Imported:
    if power_driver not in dict(DRIVER_CHOICES):
        raise PortalError(f"Unknown power driver {power_driver!r}.", field="power_driver")
    entries = check_file(data)
    imported = Imported()
    with transaction.atomic():
        for entry in entries:
            outcome = _import(entry, cluster, credential, power_driver)
            getattr(imported, outcome).append(entry.mac)
    return imported


def _import(
    entry: Entry, cluster: Cluster | None, credential: Credential | None, power_driver: str
) -> str:
    values = {
        "hostname": entry.hostname,
        "ip": entry.ip,
        "registered_at": entry.registered_at or entry.last_update or timezone.now(),
        "legacy_reprovision_status": entry.reprovision_status,
        "legacy_reprovision_started": entry.reprovision_started,
        "legacy_last_update": entry.last_update,
    }
    existing = ClusterNode.objects.filter(mac=entry.mac).first()
    if existing is None:
        node = _inventory_node(entry, credential)
        ClusterNode.objects.create(
            node=node, cluster=cluster, mac=entry.mac, power_driver=power_driver, **values
        )
        return "created"
    if entry.registered_at is None:
        values["registered_at"] = existing.registered_at or values["registered_at"]
    changed = {name: value for name, value in values.items() if getattr(existing, name) != value}
    if cluster is not None and existing.cluster_id is None:
        changed["cluster"] = cluster
    if not changed:
        return "unchanged"
    for name, value in changed.items():
        setattr(existing, name, value)
    existing.save()
    return "updated"


def _inventory_node(entry: Entry, credential: Credential | None) -> Node:
    name = entry.hostname.split(".")[0].lower()
    node = Node.objects.filter(name=name).first()
    if node is not None:
        if hasattr(node, "cluster_profile"):
            raise PortalError(
                f"Node {name} already has MAC {node.cluster_profile.mac}, not {entry.mac}.",
                field="file",
                code="invalid_file",
            )
        return node
    return Node.objects.create(
        name=name,
        address=entry.ip,
        purpose=NodePurpose.PROXMOX_NODE,
        credential=credential,
    )
