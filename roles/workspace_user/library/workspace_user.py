#!/usr/bin/python3
"""Ansible module: the Linux accounts of many workspaces, in one call."""

from __future__ import annotations

import grp
import os
import pwd
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.portal.roles.plugins.module_utils.batch import (
    ItemError,
    items_spec,
    run_items,
    step_message,
)

DOCUMENTATION = r"""
module: workspace_user
short_description: Ensure the Linux accounts of many workspaces exist or are removed
description:
  - C(state=present) makes, for each item, the account C(username) (with its own group) whose
    home is C(home), with C(shell), the comment C(comment), no supplementary group (so no
    sudo) and a locked password (no password login); an existing account is corrected.
    The home directory itself is not made here.
  - An account that exists with another home or below C(uid_min), or a home that belongs to
    another account, is never taken over: that item fails.
  - C(state=absent) removes the account (C(userdel --force), not the home) when its home is
    C(home) and its uid is at least C(uid_min); any other account of that name is left alone.
  - It runs the same shadow tools as C(ansible.builtin.user) (C(useradd), C(usermod),
    C(userdel)), but for a whole batch in one call; a tool that finds the account files
    locked by another job is retried. An item that fails does not stop the others.
options:
  state:
    description: Whether the accounts should exist.
    type: str
    choices: [present, absent]
    default: present
  shell:
    description: Login shell of the accounts.
    type: path
    default: /bin/bash
  uid_min:
    description: Accounts with a lower uid are system accounts, never changed or removed.
    type: int
    default: 1000
  items:
    description: The workspaces.
    type: list
    elements: dict
    required: true
    suboptions:
      slug:
        description: The workspace's slug (the key of the result).
        type: str
        required: true
      username:
        description: The account's name.
        type: str
        required: true
      home:
        description: The account's home (absolute).
        type: path
        required: true
      comment:
        description: The account's GECOS comment (C(state=present)).
        type: str
        default: ""
"""

EXAMPLES = r"""
- name: Ensure the workspace users exist
  workspace_user:
    items:
      - {slug: alice-dev, username: ws-alice-dev, home: /srv/workspaces/alice-dev}
"""

RETURN = r"""
workspaces:
  description: Per slug, C(ok), C(created) (made by this call), C(changed), C(skipped)
    (absent, an account that is not the workspace's was left alone) and C(msg).
  returned: always
  type: dict
outcome:
  description: Per slug, what the playbooks report (the role's C(workspace_user_outcome)):
    C(ok), C(created) and C(message) (C(user: <msg>) when not ok; with C(state=absent) an
    account left alone is noted even when ok).
  returned: always
  type: dict
"""

USERNAME_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
LOCK_EXIT_CODES = {1, 10}  # passwd / group file busy (another useradd, a package install)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "shell": {"type": "path", "default": "/bin/bash"},
            "uid_min": {"type": "int", "default": 1000},
            "items": items_spec(
                username={"type": "str", "required": True},
                home={"type": "path", "required": True},
                comment={"type": "str", "default": ""},
            ),
        },
        supports_check_mode=True,
    )
    state = module.params["state"]

    def handle(item, result):
        if not USERNAME_RE.fullmatch(item["username"]) or not os.path.isabs(item["home"]):
            raise ItemError(f"refusing username {item['username']!r} or home {item['home']!r}")
        if state == "present":
            ensure_present(module, item, result)
        else:
            ensure_absent(module, item, result)

    results = run_items(module.params["items"], handle, fresh_result)
    module.exit_json(
        changed=any(r["changed"] for r in results.values()),
        workspaces=results,
        outcome={slug: outcome(result, state) for slug, result in results.items()},
    )


def fresh_result(_item):
    return {"ok": True, "created": False, "changed": False, "skipped": False, "msg": ""}


def outcome(result, state):
    """The item's outcome for the playbooks: an absent account's note stays when ok."""
    message = step_message(result, "user")
    if state == "absent" and result["ok"]:
        message = result["msg"]
    return {"ok": result["ok"], "created": result["created"], "message": message}


def account(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def ensure_present(module, item, result):
    name, home = item["username"], item["home"]
    user = account(name)
    if user is None:
        owner = next((p.pw_name for p in pwd.getpwall() if p.pw_dir == home), None)
        if owner is not None:
            raise ItemError(f"home {home} belongs to account {owner}")
        result.update(created=True, changed=True)
        if module.check_mode:
            return
        run(
            module,
            [
                "useradd",
                "--no-create-home",
                "--user-group",
                "--home-dir",
                home,
                "--shell",
                module.params["shell"],
                "--comment",
                item["comment"],
                name,
            ],
        )
        user = account(name)
        if user is None:
            raise ItemError(f"useradd made no account {name}")
    elif user.pw_dir != home:
        raise ItemError(f"account {name} exists with another home")
    elif user.pw_uid < module.params["uid_min"]:
        raise ItemError(f"account {name} is a system account")
    change = []
    if user.pw_shell != module.params["shell"]:
        change += ["--shell", module.params["shell"]]
    if user.pw_gecos != item["comment"]:
        change += ["--comment", item["comment"]]
    if any(name in group.gr_mem for group in grp.getgrall()):
        change += ["--groups", ""]
    if not password_locked(name):
        change += ["--lock"]
    if change:
        result["changed"] = True
        if not module.check_mode:
            run(module, ["usermod", *change, name])


def password_locked(name):
    with open("/etc/shadow") as shadow:
        for line in shadow:
            fields = line.split(":")
            if fields[0] == name:
                return len(fields) > 1 and (fields[1].startswith("!") or fields[1] == "*")
    return True


def ensure_absent(module, item, result):
    user = account(item["username"])
    if user is None:
        return
    if user.pw_dir != item["home"] or user.pw_uid < module.params["uid_min"]:
        result.update(
            skipped=True, msg=f"account {item['username']} is not this workspace's: left alone"
        )
        return
    result["changed"] = True
    if not module.check_mode:
        run(module, ["userdel", "--force", item["username"]])


def run(module, argv, attempts=4):
    for attempt in range(attempts):
        rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc == 0:
            return
        if rc not in LOCK_EXIT_CODES or "lock" not in (err + out).lower():
            break
        time.sleep(1 + attempt)
    raise ItemError(f"{argv[0]}: {(err or out).strip()[:300]}")


if __name__ == "__main__":
    main()
