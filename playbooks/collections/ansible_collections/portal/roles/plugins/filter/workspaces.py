"""The workspace playbooks' decisions, on the controller: what workspace_create.yml rolls
back for the items that failed, and the per-slug ``workspace_results`` every playbook reports
to the portal (portal/workspaces/results.py reads them).

Each takes ``workspace_items`` and the roles' outcomes (``workspace_user_outcome``,
``workspace_quota_outcome``, ``code_server_outcome``: {slug: {ok, message, ...}}); an item
without an outcome of a step was cut off by an error of the whole node (``error``).
"""

from __future__ import annotations

from collections.abc import Mapping


def _workspaces(items):
    return [item for item in items if isinstance(item, Mapping) and "slug" in item]


def _error(error):
    return error or "not done"


def rollback_plan(items, outcomes, error="", step=""):
    """{code_server: [items], quota: [items], user: [items]}: what to undo for every item
    whose code-server did not end ok. Undone: the files this run created, the home this run
    created, the account this run created. A step cut off by ``error`` (no outcome) counts as
    made for an item whose account this run created (``step`` is the step that was running)."""
    plan = {"code_server": [], "quota": [], "user": []}
    for item in _workspaces(items):
        slug = item["slug"]
        code_server = outcomes["code_server"].get(slug, {})
        if code_server.get("ok", False):
            continue
        quota = outcomes["quota"].get(slug)
        new_account = outcomes["user"].get(slug, {}).get("created", False)
        cut_off = bool(new_account and error)
        if (
            code_server.get("config_created", False)
            or code_server.get("unit_created", False)
            or (cut_off and code_server == {} and quota is not None and quota["ok"])
        ):
            plan["code_server"].append(item)
        if quota["created"] if quota is not None else cut_off and step == "quota":
            plan["quota"].append(item)
        if new_account:
            plan["user"].append(item)
    return plan


def rollback_errors(outcomes):
    """{slug: message} of the first step whose rollback failed, per item."""
    errors = {}
    for outcome in outcomes:
        for slug, result in outcome.items():
            if not result["ok"] and slug not in errors:
                errors[slug] = result["message"]
    return errors


def create_results(
    items, outcomes, plan, backend, error="", step="", undo_errors=None, undo_error=""
):
    """workspace_create.yml's workspace_results: ok with the code-server's state, or the
    first step that failed, with what went wrong undoing it."""
    undo_errors = undo_errors or {}
    rolled_back = [item["slug"] for item in plan["code_server"]]
    undone = [item["slug"] for key in ("code_server", "quota", "user") for item in plan[key]]
    results = {}
    for item in _workspaces(items):
        slug = item["slug"]
        user = outcomes["user"].get(slug)
        quota = outcomes["quota"].get(slug)
        code_server = outcomes["code_server"].get(slug)
        quota_backend = quota["backend"] if quota is not None else backend
        if code_server is not None and code_server["ok"]:
            results[str(slug)] = {
                "ok": True,
                "step": "",
                "message": "",
                "quota_backend": quota_backend,
                "quota_used_bytes": quota["used_bytes"] if quota is not None else None,
                "active_state": code_server["active_state"],
                "healthy": code_server["healthy"],
            }
            continue
        if user is None:
            failed_step, message = "user", _error(error)
        elif not user["ok"]:
            failed_step, message = "user", user["message"]
        elif quota is None:
            failed_step, message = "quota", _error(error)
        elif not quota["ok"]:
            failed_step, message = "quota", quota["message"]
        elif code_server is None:
            failed_step, message = step, _error(error)
        else:
            failed_step, message = code_server["step"], code_server["message"]
        undo = undo_errors.get(slug, undo_error)
        if slug in undone and undo:
            message = f"{message}; rollback failed: {undo}"
        results[str(slug)] = {
            "ok": False,
            "step": failed_step,
            "message": message,
            "quota_backend": quota_backend,
            "quota_used_bytes": None,
            "active_state": "inactive"
            if slug in rolled_back or code_server is None
            else code_server["active_state"] or "unknown",
            "healthy": False,
        }
    return results


def delete_results(items, code_server, quota, user, error=""):
    """workspace_delete.yml's workspace_results: the first step (unit, quota, user) that
    failed or was cut off; when all went well, the steps' notes (an account left alone)."""
    results = {}
    for item in _workspaces(items):
        slug = item["slug"]
        failure = None
        for step, outcome in (("unit", code_server), ("quota", quota), ("user", user)):
            if slug not in outcome:
                failure = (step, _error(error))
            elif not outcome[slug]["ok"]:
                failure = (step, outcome[slug]["message"])
            if failure:
                break
        notes = [o.get(slug, {}).get("message", "") for o in (code_server, quota, user)]
        results[str(slug)] = {
            "ok": failure is None,
            "step": failure[0] if failure else "",
            "message": failure[1] if failure else "; ".join(note for note in notes if note),
            "active_state": code_server.get(slug, {}).get("active_state", "unknown"),
        }
    return results


def resize_results(items, quota, code_server, backend, error=""):
    """workspace_resize.yml's workspace_results: the quota step, then the code-server one."""
    results = {}
    for item in _workspaces(items):
        slug = item["slug"]
        limits, unit = quota.get(slug), code_server.get(slug)
        if limits is None:
            step, message = "quota", _error(error)
        elif not limits["ok"]:
            step, message = "quota", limits["message"]
        elif unit is None:
            step, message = "config", _error(error)
        elif not unit["ok"]:
            step, message = unit["step"], unit["message"]
        else:
            step, message = "", ""
        results[str(slug)] = {
            "ok": step == "",
            "step": step,
            "message": message,
            "quota_backend": limits["backend"] if limits is not None else backend,
            "quota_used_bytes": limits["used_bytes"] if limits is not None else None,
            "active_state": (unit["active_state"] if unit is not None else "") or "unknown",
            "healthy": unit["healthy"] if unit is not None else False,
        }
    return results


def control_results(items, code_server, quota, action, error=""):
    """workspace_control.yml's workspace_results: the code-server outcome (status: with the
    disk usage)."""
    results = {}
    for item in _workspaces(items):
        slug = item["slug"]
        entry = dict(
            code_server.get(
                slug,
                {
                    "ok": False,
                    "step": "",
                    "message": _error(error),
                    "active_state": "unknown",
                },
            )
        )
        if action == "status":
            entry["quota_used_bytes"] = quota.get(slug, {}).get("used_bytes")
        results[str(slug)] = entry
    return results


class FilterModule:
    def filters(self):
        return {
            "workspace_rollback_plan": rollback_plan,
            "workspace_rollback_errors": rollback_errors,
            "workspace_create_results": create_results,
            "workspace_delete_results": delete_results,
            "workspace_resize_results": resize_results,
            "workspace_control_results": control_results,
        }
