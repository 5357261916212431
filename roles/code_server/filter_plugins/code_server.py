"""The code_server role's decisions, on the controller: which items are usable, which units
to start or restart, and the outcome of every workspace (the fact ``code_server_outcome``).

Pure functions over the role's facts and its modules' results; tests/roles call them
directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?\Z")
PORT = re.compile(r"[0-9]{4,5}\Z")
IP_LITERAL = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
CPU_QUOTA = re.compile(r"[1-9][0-9]{0,4}\Z")
MEMORY_MAX = re.compile(r"[1-9][0-9]{1,6}\Z")
RUNNING = ("active", "activating", "reloading")


def _field(item, key, default=""):
    return str(item.get(key, default)) if isinstance(item, Mapping) else str(default)


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def item_problems(items, checks="full"):
    """What is wrong with the workspace items, one message per bad item. checks: ``slug``
    (absent: slugs only), ``address`` (control: also port and bind_address) or ``full``."""
    problems, seen, binds = [], [], []
    for number, item in enumerate(items, 1):
        slug = _field(item, "slug")
        address, port = _field(item, "bind_address"), _field(item, "port")
        if not SLUG.match(slug):
            problems.append(f"item {number}: slug is not a DNS label of 1-40 characters")
        elif slug in seen:
            problems.append(f"{slug}: slug appears twice")
        elif checks == "slug":
            pass
        elif not PORT.match(port) or not 1024 <= int(port) <= 65535:
            problems.append(f"{slug}: port is not an integer from 1024 to 65535")
        elif not ((IP_LITERAL.match(address) and ":" in address) or HOST_NAME.match(address)):
            problems.append(f"{slug}: bind_address is not an IP address or a host name")
        elif f"{address}/{port}" in binds:
            problems.append(f"{slug}: bind_address and port appear twice")
        elif checks == "address":
            pass
        elif not USERNAME.match(_field(item, "username")):
            problems.append(f"{slug}: username is not [a-z_][a-z0-9_-]{{0,31}}")
        elif not CPU_QUOTA.match(_field(item, "cpu_quota_percent")):
            problems.append(f"{slug}: cpu_quota_percent is not an integer from 1 to 99999")
        elif not MEMORY_MAX.match(_field(item, "memory_max_mb")):
            problems.append(f"{slug}: memory_max_mb is not an integer from 10 to 9999999")
        seen.append(slug)
        binds.append(f"{address}/{port}")
    return problems


def bind(item):
    """``address:port`` as code-server's bind-addr wants it (an IPv6 address in brackets)."""
    address = _field(item, "bind_address", "127.0.0.1")
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{_int(item.get('port', 1))}"


def render_contexts(items, root):
    """Per item, the variables its config.yaml and unit templates see."""
    return [
        {
            "slug": str(item["slug"]),
            "owner": str(item["username"]),
            "context": {
                "code_server_ws": item,
                "code_server_home": f"{root}/{item['slug']}",
                "code_server_bind": bind(item),
            },
        }
        for item in items
    ]


def slug_items(items):
    """code_server_files' items for state absent: the slugs alone."""
    return [{"slug": str(item["slug"])} for item in items]


def health_items(items, skip=()):
    """code_server_health's items (slug, /healthz URL) for the items not in skip."""
    return [
        {"slug": str(item["slug"]), "url": f"http://{bind(item)}/healthz"}
        for item in items
        if item["slug"] not in skip
    ]


def unit_names(slugs):
    return [f"code-server-{slug}.service" for slug in slugs]


def unit_states(stdout):
    """{slug: {Id, LoadState, ActiveState, UnitFileState}} from ``systemctl show``."""
    states = {}
    for block in (stdout or "").split("\n\n"):
        if not block.strip():
            continue
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        slug = re.sub(r"[.]service$", "", re.sub(r"^code-server-", "", props.get("Id", "")))
        states[slug] = props
    return states


def systemctl_errors(results, verb):
    """{slug: message} of the units whose one-by-one systemctl call failed."""
    errors = {}
    for result in results or []:
        if result.get("failed"):
            slug = result[result.get("ansible_loop_var", "_code_server_slug")]
            text = str(result.get("stderr", "") or result.get("msg", "failed"))[:300]
            errors[slug] = f"systemctl {' '.join(verb)}: {text}"
    return errors


def going(items, files):
    """The items whose files were written (code_server_files' ``workspaces``)."""
    return [item for item in items if files[item["slug"]]["ok"]]


def start_plan(items, states, files, ensure_running):
    """{start: [slugs], restart: [slugs]}: start (enable --now) what should run and does not
    run enabled; restart what runs and whose config (or unit, when ensuring it runs) changed."""
    plan = {"start": [], "restart": []}
    for item in items:
        slug = item["slug"]
        state, written = states.get(slug, {}), files[slug]
        running = state.get("ActiveState", "") in RUNNING
        if ensure_running and not (running and state.get("UnitFileState", "") == "enabled"):
            plan["start"].append(slug)
        elif running and (
            written["config_changed"] or (written["unit_changed"] and ensure_running)
        ):
            plan["restart"].append(slug)
    return plan


def configure_outcome(items, files, start_errors, health, ensure_running):
    """The outcome of every item after main (configure): the first step that failed."""
    outcome = {}
    for item in items:
        slug = item["slug"]
        written, checked = files[slug], health.get(slug, {})
        running = checked.get("active_state", "") in RUNNING
        if not written["ok"]:
            step = written["step"] or "config"
            message = f"{written['step']}: {written['msg']}"
        elif slug in start_errors:
            step, message = "unit", start_errors[slug]
        elif not checked.get("healthy", False) and (ensure_running or running):
            step, message = "health", f"health: {checked.get('msg', 'not checked')}"
        else:
            step, message = "", ""
        outcome[slug] = {
            "ok": step == "",
            "step": step,
            "message": message,
            "config_created": written["config_created"],
            "unit_created": written["unit_created"],
            "active_state": checked.get("active_state", ""),
            "healthy": checked.get("healthy", False),
        }
    return outcome


def absent_outcome(items, removed, stop_errors, states):
    """The outcome of every item after absent: a unit that would not stop, or its files."""
    outcome = {}
    for item in items:
        slug = item["slug"]
        files = removed[slug]
        message = stop_errors.get(slug, "" if files["ok"] else f"files: {files['msg']}")
        outcome[slug] = {
            "ok": message == "",
            "step": "",
            "message": message,
            "active_state": "inactive"
            if message == ""
            else states.get(slug, {}).get("ActiveState", ""),
            "healthy": False,
        }
    return outcome


def control_outcome(items, action, missing, errors, health, wave_health, states, logs):
    """The outcome of every item after control (start|stop|restart|status|logs)."""
    lines = {r[r["ansible_loop_var"]]: r["stdout"] for r in logs or [] if "stdout" in r}
    outcome = {}
    for item in items:
        slug = item["slug"]
        checked = health.get(slug, {})
        active = checked.get("active_state", states.get(slug, {}).get("ActiveState", ""))
        if slug in missing:
            message = f"no unit code-server-{slug}.service on this node"
        elif slug in errors:
            message = errors[slug]
        elif action in ("start", "restart") and not checked.get("healthy", False):
            message = f"health: {wave_health.get(slug, checked).get('msg', 'not checked')}"
        else:
            message = ""
        entry = {"ok": message == "", "step": "", "message": message, "active_state": active}
        if action == "logs":
            entry["logs"] = lines.get(slug, "")
        else:
            entry["healthy"] = checked.get("healthy", False)
        outcome[slug] = entry
    return outcome


class FilterModule:
    def filters(self):
        return {
            "code_server_item_problems": item_problems,
            "code_server_render_contexts": render_contexts,
            "code_server_slug_items": slug_items,
            "code_server_health_items": health_items,
            "code_server_unit_names": unit_names,
            "code_server_unit_states": unit_states,
            "code_server_systemctl_errors": systemctl_errors,
            "code_server_going": going,
            "code_server_start_plan": start_plan,
            "code_server_configure_outcome": configure_outcome,
            "code_server_absent_outcome": absent_outcome,
            "code_server_control_outcome": control_outcome,
        }
