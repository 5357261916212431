#!/usr/bin/python3
"""Is this node ready to be clustered? pvecm and corosync installed, and every given
service active, checked once (never waits): ready, and the reason when it is not."""

from __future__ import annotations

import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

TOOLS = ("pvecm", "corosync", "corosync-quorumtool")


def missing_tools(which=shutil.which) -> list:
    return [tool for tool in TOOLS if not which(tool)]


def inactive_services(services, systemctl="systemctl") -> dict:
    """{service: its state} for each service that is not active (one systemctl call)."""
    if not services:
        return {}
    result = subprocess.run(
        [systemctl, "is-active", *services], capture_output=True, text=True, check=False
    )
    states = result.stdout.split()
    states += ["unknown"] * (len(services) - len(states))
    return {name: state for name, state in zip(services, states, strict=True) if state != "active"}


def reason(missing: list, inactive: dict) -> str:
    parts = []
    if missing:
        parts.append(f"not installed: {', '.join(missing)}")
    if inactive:
        parts.append(
            "not active: " + ", ".join(f"{name} ({state})" for name, state in inactive.items())
        )
    return "; ".join(parts)


def main():
    module = AnsibleModule(
        argument_spec={"services": {"type": "list", "elements": "str", "default": []}},
        supports_check_mode=True,
    )
    missing = missing_tools()
    inactive = (
        inactive_services(module.params["services"])
        if shutil.which("systemctl")
        else {name: "no systemctl" for name in module.params["services"]}
    )
    why = reason(missing, inactive)
    module.exit_json(changed=False, ready=not why, reason=why or "ready", inactive=inactive)


if __name__ == "__main__":
    main()
