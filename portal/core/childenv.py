"""The environment a process the portal starts may see.

The portal's own processes hold their configuration in the environment (SECRET_KEY,
FIELD_ENCRYPTION_KEY, DATABASE_URL with its password, the broker's URL, EMAIL_URL …). A child
(ansible-playbook and every module it runs on the controller, ssh, ssh-keyscan, ipmitool)
needs none of it, and a child's environment is readable in ``/proc/<pid>/environ``, is
printed by a careless ``command: env`` into a job's events, and is written by ansible-runner
into the run's ``artifacts/<ident>/command`` file. So children get an allow-list of the
inherited variables (what a shell, a locale, a proxy and Ansible itself read) plus what the
caller adds, never the rest. Operators add names with ``CHILD_ENV_PASSTHROUGH``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.conf import settings

INHERITED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TERM",
        "SSH_AUTH_SOCK",
        "KRB5CCNAME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "VIRTUAL_ENV",
        *(f"{name}_proxy" for name in ("http", "https", "no", "all")),
        *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "NO", "ALL")),
    }
)
# Ansible's and the locale's own settings, whatever their names.
INHERITED_PREFIXES = ("ANSIBLE_", "LC_")


def inherited(name: str) -> bool:
    return (
        name in INHERITED
        or name.startswith(INHERITED_PREFIXES)
        or name in settings.CHILD_ENV_PASSTHROUGH
    )


def child_environment(added: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowed part of this process's environment, with ``added`` on top."""
    env = {name: value for name, value in os.environ.items() if inherited(name)}
    env.update(added or {})
    return env


def without_inherited_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` built from ``os.environ`` by someone else (ansible-runner) less what it
    inherited and may not pass on. A variable whose value differs from ours was set for the
    child on purpose and stays."""
    return {
        name: value
        for name, value in env.items()
        if inherited(name) or os.environ.get(name) != value
    }
