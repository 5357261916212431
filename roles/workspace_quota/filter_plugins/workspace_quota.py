"""The workspace_quota role's checks and module items, on the controller (tests/roles call
them directly)."""

from __future__ import annotations

import re
from collections.abc import Mapping

SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?\Z")
ID = re.compile(r"[0-9]{1,9}\Z")
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
QUOTA_GB = re.compile(r"[1-9][0-9]{0,5}\Z")
GIB = 1073741824


def _field(item, key):
    return str(item.get(key, "")) if isinstance(item, Mapping) else ""


def item_problems(items, full=True):
    """What is wrong with the workspace items. full (main): also username and quota_gb;
    otherwise (absent, usage) slug and id only."""
    problems, seen = [], []
    for number, item in enumerate(items, 1):
        slug = _field(item, "slug")
        if not SLUG.match(slug):
            problems.append(f"item {number}: slug is not a DNS label of 1-40 characters")
        elif not ID.match(_field(item, "id")):
            problems.append(f"{slug}: id is not a positive integer")
        elif not full:
            pass
        elif not USERNAME.match(_field(item, "username")):
            problems.append(f"{slug}: username is not [a-z_][a-z0-9_-]{{0,31}}")
        elif not QUOTA_GB.match(_field(item, "quota_gb")):
            problems.append(f"{slug}: quota_gb is not an integer from 1 to 999999")
        elif slug in seen:
            problems.append(f"{slug}: slug appears twice")
        seen.append(slug)
    return problems


def module_items(items, project_id_base, full=True):
    """workspace_quota's items: slug and project id (base + the portal's id); full (state
    present) also the owner and the limit in bytes (quota_gb GiB)."""
    out = []
    for item in items:
        entry = {"slug": str(item["slug"]), "project_id": int(project_id_base) + int(item["id"])}
        if full:
            entry.update(owner=str(item["username"]), limit_bytes=int(item["quota_gb"]) * GIB)
        out.append(entry)
    return out


class FilterModule:
    def filters(self):
        return {
            "workspace_quota_item_problems": item_problems,
            "workspace_quota_module_items": module_items,
        }
