#!/usr/bin/python3
"""Ansible module: wait, for many workspaces at once, until code-server answers /healthz."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.portal.roles.plugins.module_utils.batch import items_spec

DOCUMENTATION = r"""
module: code_server_health
short_description: Wait until many code-server workspaces answer /healthz with 200
description:
  - Polls every item's C(url) in parallel until it answers 200 or C(timeout) seconds pass,
    and reads each unit's C(systemctl is-active) state. A unit that is C(failed) or
    C(inactive) is not waited for. With C(timeout=0) every item is checked once.
  - Never fails for an item: the result says per slug whether it is C(healthy).
options:
  items:
    description: The workspaces.
    type: list
    elements: dict
    required: true
    suboptions:
      slug:
        description: The workspace's slug (its unit is C(code-server-<slug>.service)).
        type: str
        required: true
      url:
        description: The health URL, e.g. C(http://10.0.0.2:8001/healthz).
        type: str
        required: true
  timeout:
    description: Seconds to wait in all.
    type: int
    default: 60
  interval:
    description: Seconds between two rounds of checks.
    type: float
    default: 0.5
"""

EXAMPLES = r"""
- name: Ensure the workspaces answer /healthz
  code_server_health:
    items:
      - {slug: alice-dev, url: "http://10.0.0.2:8001/healthz"}
"""

RETURN = r"""
workspaces:
  description: Per slug, C(healthy), C(status) (last HTTP status or null), C(active_state),
    C(seconds) (until healthy) and C(msg).
  returned: always
  type: dict
"""

GIVE_UP_STATES = {"failed", "inactive"}
# No proxy: the workspaces listen on this node's own addresses.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def main():
    module = AnsibleModule(
        argument_spec={
            "items": items_spec(url={"type": "str", "required": True}),
            "timeout": {"type": "int", "default": 60},
            "interval": {"type": "float", "default": 0.5},
        },
        supports_check_mode=True,
    )
    items = module.params["items"]
    for item in items:
        if not item["url"].startswith("http://"):
            module.fail_json(msg=f"refusing a non-http health url for {item['slug']}")
    started = time.monotonic()
    deadline = started + max(module.params["timeout"], 0)
    results = {
        i["slug"]: {
            "healthy": False,
            "status": None,
            "active_state": "",
            "seconds": None,
            "msg": "",
        }
        for i in items
    }
    pending = list(items)
    with ThreadPoolExecutor(max_workers=min(16, max(len(items), 1))) as pool:
        while pending:
            states = active_states(module, [i["slug"] for i in pending])
            statuses = list(pool.map(probe, [i["url"] for i in pending]))
            still = []
            for item, (status, error) in zip(pending, statuses, strict=True):
                result = results[item["slug"]]
                result.update(active_state=states.get(item["slug"], "unknown"), status=status)
                result["msg"] = error
                if status == 200:
                    seconds = round(time.monotonic() - started, 1)
                    result.update(healthy=True, msg="", seconds=seconds)
                elif result["active_state"] in GIVE_UP_STATES:
                    result["msg"] = f"unit is {result['active_state']}" + (
                        f"; {error}" if error else ""
                    )
                else:
                    still.append(item)
            pending = still
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(module.params["interval"])
    for item in pending:
        result = results[item["slug"]]
        result["msg"] = f"no 200 from /healthz after {module.params['timeout']} s" + (
            f" (last: {result['msg']})" if result["msg"] else ""
        )
    module.exit_json(changed=False, workspaces=results)


def probe(url):
    """(HTTP status or None, error text)."""
    try:
        # Only http:// URLs get here (checked in main).
        request = urllib.request.Request(url, method="GET")  # noqa: S310
        with OPENER.open(request, timeout=3) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return None, str(getattr(error, "reason", error))[:200]


def active_states(module, slugs):
    """{slug: systemctl is-active state} in one call."""
    units = [f"code-server-{slug}.service" for slug in slugs]
    _rc, out, _err = module.run_command(["systemctl", "is-active", *units])
    lines = out.splitlines()
    return {
        slug: (lines[n].strip() if n < len(lines) else "unknown") for n, slug in enumerate(slugs)
    }


if __name__ == "__main__":
    main()
