"""The workspace_user role's checks and module items, on the controller (tests/roles call
them directly)."""

from __future__ import annotations

import re
from collections.abc import Mapping

SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?\Z")
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")


def item_problems(items):
    """What is wrong with the workspace items: a slug or username unsafe or used twice."""
    problems, slugs, usernames = [], [], []
    for number, item in enumerate(items, 1):
        slug = str(item.get("slug", "")) if isinstance(item, Mapping) else ""
        username = str(item.get("username", "")) if isinstance(item, Mapping) else ""
        if not SLUG.match(slug):
            problems.append(f"item {number}: slug is not a DNS label of 1-40 characters")
        elif not USERNAME.match(username):
            problems.append(f"{slug}: username is not [a-z_][a-z0-9_-]{{0,31}}")
        elif slug in slugs or username in usernames:
            problems.append(f"{slug}: slug or username appears twice")
        slugs.append(slug)
        usernames.append(username)
    return problems


def module_items(items, root, comment=None):
    """workspace_user's items: the account of each workspace, its home root/<slug>, and
    (state present) the comment followed by the slug."""
    out = []
    for item in items:
        entry = {
            "slug": str(item["slug"]),
            "username": str(item["username"]),
            "home": f"{root}/{item['slug']}",
        }
        if comment is not None:
            entry["comment"] = f"{comment} {item['slug']}"
        out.append(entry)
    return out


class FilterModule:
    def filters(self):
        return {
            "workspace_user_item_problems": item_problems,
            "workspace_user_module_items": module_items,
        }
