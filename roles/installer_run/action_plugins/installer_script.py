"""Action plugin for the role's installer_script module: the controller's side of the one
task that runs an installer. Each task of a job costs a worker process, its templating and
its events (bench: installer_overhead_ratio), so the checks before the run and the report
after it are part of this task instead of an assert and a set_stats of their own:

- refuses, before anything reaches the node, an installer id, hash or script name that could
  lead out of the role's directories (the role builds the node's paths from them);
- runs the module (one SSH round trip);
- hands its report to the portal with set_stats' own mechanism (``ansible_stats``, merged
  over the hosts): ``installer_run_results: {host: report}``.

Options besides the module's: ``id`` and ``version`` (checked, reported; not sent on).
"""

from __future__ import annotations

import re
from typing import Any

from ansible.plugins.action import ActionBase

INSTALLER_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SCRIPT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
REFUSED = "refusing an unsafe installer id, hash or script name (or an uninstall without a script)"
REPORT = "installer_run_results"  # the playbook's output (portal/installers/actions/run.py)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = False

    def run(self, tmp: Any = None, task_vars: dict | None = None) -> dict:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp  # no effect since Ansible 2.5
        if result.get("skipped"):
            return result
        module_args = dict(self._task.args)
        installer_id = str(module_args.pop("id", ""))
        version = str(module_args.pop("version", ""))
        refusal = unsafe(installer_id, module_args)
        if refusal:
            return {**result, "failed": True, "msg": refusal}
        try:
            result.update(self._execute_module(module_args=module_args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if not result.get("failed") and result.get("stage"):
            # The script's exit code is the report, not this task's failure (Ansible fails a
            # result whose rc is not 0 unless it says): stats count only from a task that did
            # not fail, and the role's next task fails the host.
            result["failed"] = False
            host = task_vars["inventory_hostname"]
            stats = {REPORT: {host: report(result, version)}}
            result["ansible_stats"] = {"data": stats, "per_host": False, "aggregate": True}
        return result


def unsafe(installer_id: str, module_args: dict) -> str:
    """Why these values may not reach the node ('' when they may)."""
    script = str(module_args.get("script") or "")
    undo = str(module_args.get("undo_script") or "")
    if not (
        INSTALLER_ID.match(installer_id)
        and SHA256.match(str(module_args.get("sha256") or ""))
        and SCRIPT_NAME.match(script)
        and (not undo or SCRIPT_NAME.match(undo))
    ):
        return REFUSED
    return ""


def report(ran: dict, version: str) -> dict:
    """What the portal reads per host: a preflight refusal, or the run's outcome."""
    if ran["stage"] == "preflight":
        return {"stage": "preflight", "rc": None, "reason": ran.get("reason", "")}
    return {
        "stage": ran["stage"],
        "version": version,
        "rc": ran.get("rc"),
        "result": ran.get("result", ""),
        "tail": ran.get("tail", ""),
        "failing_line": ran.get("failing_line", ""),
        "left_running": ran.get("left_running", 0),
        "uninstall_rc": ran.get("uninstall_rc"),
    }
