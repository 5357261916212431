"""Power / reimage drivers for bare-metal nodes: one small interface, three drivers.

``reimage`` makes the node boot from the network next and power-cycles it (or powers it on
when it is off): the installer runs, and the node's post-install script registers it.
``disable_network_boot`` follows the registration, so the node boots its new disk from now
on (no reinstall loop). Every call is bounded by a timeout; every failure is a
:class:`PowerError` whose ``reason`` an operator can act on and that never holds a secret.

Drivers: ``ipmi`` (ipmitool over lanplus), ``redfish`` (boot source override + reset over
HTTPS) and ``test-host`` (the project's test hosts: the harness re-images the container).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

DRIVER_CHOICES = [
    ("ipmi", "IPMI (ipmitool)"),
    ("redfish", "Redfish"),
    ("test-host", "Test host (harness re-image)"),
]
POWER_ON, POWER_OFF = "on", "off"


@dataclass(frozen=True)
class PowerTarget:
    """What a driver needs to reach one node's power control."""

    node: str  # the node's name, for messages
    mac: str
    address: str = ""  # the BMC's host (ipmi, redfish)
    username: str = ""
    password: str = field(default="", repr=False)  # secret: never logged, never in argv
    options: Mapping[str, Any] = field(default_factory=dict)  # driver-specific


class PowerError(Exception):
    """A power action failed; ``reason`` says why, for the operator, without secrets."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PowerDriver(Protocol):
    name: ClassVar[str]

    def reimage(self, target: PowerTarget) -> None:
        """Network boot next, then power cycle (or power on when off)."""

    def disable_network_boot(self, target: PowerTarget) -> None:
        """Boot from disk from now on (called once the node registered)."""

    def power_state(self, target: PowerTarget) -> str:
        """``"on"`` or ``"off"``."""

    def check_options(self, options: Any) -> dict[str, Any]:
        """The options, checked and with defaults; ValueError naming the bad key."""


def get_driver(name: str) -> PowerDriver:
    """The driver called ``name``; PowerError (never KeyError) for an unknown one."""
    from portal.clusters.power.ipmi import IpmiDriver
    from portal.clusters.power.redfish import RedfishDriver
    from portal.clusters.power.test_host import TestHostDriver

    drivers: dict[str, type[PowerDriver]] = {
        driver.name: driver for driver in (IpmiDriver, RedfishDriver, TestHostDriver)
    }
    try:
        return drivers[name]()
    except KeyError:
        known = ", ".join(sorted(drivers))
        raise PowerError(f"unknown power driver {name!r} (known: {known})") from None
