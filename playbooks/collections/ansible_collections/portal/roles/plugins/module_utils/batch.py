"""What the roles' batch modules share: the ``items`` argument spec, the error of one item
and the per-item loop (a failing item is reported for it, the others go on).

Modules in ``roles/*/library/`` import it as
``ansible_collections.portal.roles.plugins.module_utils.batch``; Ansible ships it to the node
with the module. It finds the collection beside the playbooks (``playbooks/collections``) when
an operator runs ``ansible-playbook playbooks/...``, and through ``ANSIBLE_COLLECTIONS_PATH``
in the portal's jobs (portal/jobs/orphans.py).
"""

from __future__ import annotations

import re

# A workspace's slug: a DNS label of 1-40 characters (the roles' preflight checks it too).
SLUG_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")


class ItemError(Exception):
    """A problem of one workspace: reported for it, the others go on."""


def items_spec(**options) -> dict:
    """The argument spec of ``items``: a required list of dicts, each with a ``slug`` (the
    key of the results) and the given options."""
    return {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {"slug": {"type": "str", "required": True}, **options},
    }


def run_items(items, handle, fresh) -> dict:
    """{slug: result} for every item: ``fresh(item)`` makes its result (with ``ok`` true and
    ``msg``), ``handle(item, result)`` does the work. ItemError or OSError of one item marks
    only its result failed, with the message in ``msg``; a refused slug is never handled."""
    results = {}
    for item in items:
        slug = item["slug"]
        result = fresh(item)
        try:
            if not SLUG_RE.fullmatch(slug):
                raise ItemError(f"refusing slug {slug!r}")
            handle(item, result)
        except ItemError as error:
            result.update(ok=False, msg=str(error))
        except OSError as error:
            result.update(ok=False, msg=f"{error.strerror}: {error.filename or slug}")
        results[slug] = result
    return results


def step_message(result, step: str) -> str:
    """What the playbooks report for an item after a step: empty when it went well, else the
    step's name and the error (``quota: <msg>``)."""
    return "" if result["ok"] else f"{step}: {result['msg']}"
