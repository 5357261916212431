#!/usr/bin/python3
"""Ansible module: the config.yaml and systemd unit of many workspaces, in one call."""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.portal.roles.plugins.module_utils.batch import (
    ItemError,
    items_spec,
    run_items,
)

DOCUMENTATION = r"""
module: code_server_files
short_description: Write or remove the config and unit files of many code-server workspaces
description:
  - For each item, C(config_dir/<slug>.yaml) (owned by the workspace user, mode 0600: it holds
    the password) and C(unit_dir/code-server-<slug>.service) (root, 0644) get the given
    contents. Files are replaced atomically and only when their content, owner or mode differ.
  - One call handles a whole batch; an item that fails is reported and does not stop the others.
  - It does not reload systemd; the caller does that once when C(units_changed) is true.
options:
  state:
    description: C(present) writes the files, C(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  config_dir:
    description: Directory of the workspaces' config files (root-owned, not in a user's home).
    type: path
    default: /etc/code-server
  unit_dir:
    description: Directory of the unit files.
    type: path
    default: /etc/systemd/system
  items:
    description: The workspaces.
    type: list
    elements: dict
    required: true
    suboptions:
      slug:
        description: The workspace's slug.
        type: str
        required: true
      owner:
        description: The workspace user, owner of the config file (C(state=present)).
        type: str
      config:
        description: Content of the config file (secret); null keeps the file as it is.
        type: str
      unit:
        description: Content of the unit file; null leaves the unit alone.
        type: str
"""

EXAMPLES = r"""
- name: Ensure the workspaces' files are written
  code_server_files:
    items:
      - {slug: alice-dev, owner: ws-alice-dev, config: "...", unit: "..."}
  no_log: true
"""

RETURN = r"""
workspaces:
  description: Per slug, C(ok), C(msg), C(step) (C(config) or C(unit) when not ok),
    C(config_changed), C(config_created), C(unit_changed), C(unit_created).
  returned: always
  type: dict
units_changed:
  description: Whether any unit file was written or removed (systemd needs a daemon-reload).
  returned: always
  type: bool
"""


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "config_dir": {"type": "path", "default": "/etc/code-server"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "items": items_spec(
                owner={"type": "str"},
                config={"type": "str", "no_log": True},
                unit={"type": "str"},
            ),
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "present" and not module.check_mode:
        ensure_directory(params["config_dir"], 0o755)
    results = run_items(
        params["items"],
        lambda item, result: handle_item(module, item, params, result),
        fresh_result,
    )
    module.exit_json(
        changed=any(r["config_changed"] or r["unit_changed"] for r in results.values()),
        units_changed=any(r["unit_changed"] for r in results.values()),
        workspaces=results,
    )


def fresh_result(_item):
    return {
        "ok": True,
        "msg": "",
        "step": "",
        "config_changed": False,
        "config_created": False,
        "unit_changed": False,
        "unit_created": False,
    }


def handle_item(module, item, params, result):
    slug = item["slug"]
    config_path = os.path.join(params["config_dir"], f"{slug}.yaml")
    unit_path = os.path.join(params["unit_dir"], f"code-server-{slug}.service")
    if params["state"] == "absent":
        result["config_changed"] = remove_file(module, config_path)
        result["unit_changed"] = remove_file(module, unit_path)
        return
    result["step"] = "config"
    if item.get("owner") is None:
        raise ItemError("owner is required")
    try:
        owner = pwd.getpwnam(item["owner"])
    except KeyError:
        raise ItemError(f"user {item['owner']} does not exist") from None
    if item.get("config") is not None:
        result["config_created"], result["config_changed"] = write_file(
            module, config_path, item["config"], (owner.pw_uid, owner.pw_gid), 0o600
        )
    elif not os.path.isfile(config_path):
        raise ItemError(f"{config_path} is missing and no config was given")
    result["step"] = "unit"
    if item.get("unit") is not None:
        result["unit_created"], result["unit_changed"] = write_file(
            module, unit_path, item["unit"], (0, 0), 0o644
        )
    result["step"] = ""


def ensure_directory(path, mode):
    os.makedirs(path, mode=mode, exist_ok=True)


def write_file(module, path, content, ids, mode):
    """Make path hold content with owner ids and mode. Returns (created, changed)."""
    data = content.encode()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        same_meta = (st.st_uid, st.st_gid) == ids and stat.S_IMODE(st.st_mode) == mode
        if same_meta and st.st_size == len(data):
            with open(path, "rb") as handle:
                if handle.read() == data:
                    return False, False
    if module.check_mode:
        return st is None, True
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(prefix=".portal-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchown(handle.fileno(), *ids)
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)  # replaces a symlink itself, never writes through it
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return st is None, True


def remove_file(module, path):
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    if not module.check_mode:
        os.unlink(path)
    return True


if __name__ == "__main__":
    main()
