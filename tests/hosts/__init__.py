"""Disposable Debian 12 systemd test hosts (systemd-nspawn) for end-to-end tests."""

from .apt_repo import AptRepo, AptRepoUnavailable, build_apt_repo
from .code_server import CodeServerUnavailable, code_server_artifact
from .containers import Host
from .harness import HostPool, boot_hosts, start_pool
from .machine import HarnessError, HostsUnavailable, unavailable_reason
from .reimage import power_state_command, reimage_command
from .traefik import Traefik, start_traefik

__all__ = [
    "AptRepo",
    "AptRepoUnavailable",
    "CodeServerUnavailable",
    "HarnessError",
    "Host",
    "HostPool",
    "HostsUnavailable",
    "Traefik",
    "boot_hosts",
    "build_apt_repo",
    "code_server_artifact",
    "power_state_command",
    "reimage_command",
    "start_pool",
    "start_traefik",
    "unavailable_reason",
]
