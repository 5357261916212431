"""Disposable Debian 12 systemd test hosts (systemd-nspawn) for end-to-end tests."""

from .containers import Host
from .harness import HostPool, boot_hosts, start_pool
from .machine import HarnessError, HostsUnavailable, unavailable_reason
from .traefik import Traefik, start_traefik

__all__ = [
    "HarnessError",
    "Host",
    "HostPool",
    "HostsUnavailable",
    "Traefik",
    "boot_hosts",
    "start_pool",
    "start_traefik",
    "unavailable_reason",
]
