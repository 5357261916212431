"""Disposable Debian 12 systemd test hosts (systemd-nspawn) for end-to-end tests."""

from .code_server import CodeServerUnavailable, code_server_artifact
from .containers import Host
from .harness import HostPool, boot_hosts, start_pool
from .machine import HarnessError, HostsUnavailable, unavailable_reason
from .traefik import Traefik, start_traefik

__all__ = [
    "CodeServerUnavailable",
    "HarnessError",
    "Host",
    "HostPool",
    "HostsUnavailable",
    "Traefik",
    "boot_hosts",
    "code_server_artifact",
    "start_pool",
    "start_traefik",
    "unavailable_reason",
]
