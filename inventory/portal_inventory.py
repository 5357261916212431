#!/usr/bin/env python3
"""Ansible dynamic inventory: the portal's enabled nodes, read from its database.

    ansible-playbook -i inventory/portal_inventory.py playbooks/ping.yml
    inventory/portal_inventory.py --list        (or --host NAME)

Reads the same environment as manage.py (DATABASE_URL, DEBUG, SECRET_KEY, ...). With
PORTAL_INVENTORY_KEY_DIR set, the nodes' SSH keys are written there (0600) and used;
without it no secret is printed (use your ssh-agent). The nodes' pinned host keys are
written as known_hosts (and jump hosts as ssh_config) into PORTAL_INVENTORY_SSH_DIR (default:
the key directory, else ~/.cache/portal-inventory) and checked strictly. See
inventory/README.md.
"""

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
REEXEC_MARK = "PORTAL_INVENTORY_REEXEC"
KEY_DIR_VARIABLE = "PORTAL_INVENTORY_KEY_DIR"
SSH_DIR_VARIABLE = "PORTAL_INVENTORY_SSH_DIR"


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"portal inventory: {message}\n")
    raise SystemExit(code)


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ansible inventory of the portal's nodes.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="every enabled node, with groups")
    mode.add_argument("--host", metavar="NAME", help="one node's variables ({} if unknown)")
    return parser.parse_args(argv)


def ensure_django() -> None:
    """`/usr/bin/env python3` may be a python without Django: rerun with the project's venv."""
    try:
        import django  # noqa: F401
    except ImportError:
        pass
    else:
        return
    if os.environ.get(REEXEC_MARK) or not VENV_PYTHON.exists():
        fail(
            f"Django is not importable by {sys.executable} and {VENV_PYTHON} cannot help "
            "(run `make venv`, or run this script with the project's python)"
        )
    os.environ[REEXEC_MARK] = "1"
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])  # noqa: S606


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    module = os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from portal.config import ConfigError

    try:
        importlib.import_module(module)
    except ConfigError as exc:  # a bad or missing setting: one line, exit 2
        fail_config(f"portal: configuration error: {exc}{environment_hint()}")
    import django

    django.setup()


def fail_config(line: str) -> NoReturn:
    sys.stderr.write(line + "\n")
    raise SystemExit(2)


def environment_hint() -> str:
    """An operator's shell often lacks the portal's environment: say what it needs."""
    if "DEBUG" in os.environ:
        return ""
    return (
        "; this shell lacks the portal's environment (DEBUG is unset): "
        "for the `make run` demo `export DEBUG=true`, in production the portal's "
        "own variables (see inventory/README.md)"
    )


def inventory_data(host: str | None) -> dict:
    from portal.nodes.inventory import build_inventory

    key_dir = os.environ.get(KEY_DIR_VARIABLE) or None
    # Every enabled node either way: the known_hosts file written holds all of their keys.
    inventory = build_inventory(key_dir=key_dir, ssh_dir=ssh_files_dir(key_dir))
    if host is None:
        return inventory
    return inventory["_meta"]["hostvars"].get(host, {})


def ssh_files_dir(key_dir: str | None) -> str:
    configured = os.environ.get(SSH_DIR_VARIABLE) or key_dir
    if configured:
        return configured
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(cache) / "portal-inventory")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ensure_django()
    try:
        setup_django()
        from django.db import DatabaseError

        from portal.nodes.inventory import InventoryError, to_json

        try:
            data = inventory_data(None if args.list else args.host)
        except DatabaseError as exc:
            fail(
                f"cannot read nodes from the database: {first_line(exc)} "
                "(is DATABASE_URL right and the database migrated?)"
            )
        except InventoryError as exc:
            fail(str(exc))
    except SystemExit:
        raise
    except Exception as exc:  # one clear line for Ansible to show, never a traceback
        fail(f"{type(exc).__name__}: {first_line(exc)}")
    sys.stdout.write(to_json(data) + "\n")


if __name__ == "__main__":
    main()
