"""Action plugin for the role's installer_script module: the controller's side of the one
task that runs an installer. Each task of a job costs a worker process, its templating and
its events, and a module its AnsiballZ (bench: installer_overhead_ratio), so:

- it refuses, before anything reaches the node, an installer id, hash or script name that
  could lead out of the role's directories (the role builds the node's paths from them);
- it runs the module's code on the node in one SSH round trip. When the connection can pipe
  (the portal's jobs: ``pipelining = True``), the params are checked here against the
  module's ARGUMENT_SPEC and the module's file and params go on the stdin of the node's
  python, which calls its ``run_direct``: the same code and the same one round trip as a
  pipelined module, without building an AnsiballZ zip here (~120 ms of CPU per job) and
  unpacking it there, with ``ansible.module_utils.basic`` (~100 ms), for a module that uses
  none of it. Otherwise it runs as the Ansible module it also is;
- it hands its report to the portal with set_stats' own mechanism (``ansible_stats``, merged
  over the hosts): ``installer_run_results: {host: report}``.

Options besides the module's: ``id`` and ``version`` (checked, reported; not sent on).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

INSTALLER_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SCRIPT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
REFUSED = "refusing an unsafe installer id, hash or script name (or an uninstall without a script)"
REPORT = "installer_run_results"  # the playbook's output (portal/installers/actions/run.py)
# Run by the node's python (-c): the module's file and its params arrive on stdin as JSON.
BOOTSTRAP = (
    "import json, sys\n"
    "given = json.loads(sys.stdin.buffer.read())\n"
    "code = {'__name__': 'installer_script'}\n"
    "exec(compile(given['source'], 'installer_script.py', 'exec'), code)\n"
    "print(json.dumps(code['run_direct'](given['params'])))\n"
)
_loaded: dict[str, tuple[str, dict]] = {}  # module path -> (source, ARGUMENT_SPEC)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = False

    def run(self, tmp: Any = None, task_vars: dict | None = None) -> dict:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp  # no effect since Ansible 2.5
        module_args = dict(self._task.args)
        installer_id = str(module_args.pop("id", ""))
        version = str(module_args.pop("version", ""))
        refusal = unsafe(installer_id, module_args)
        if refusal:
            return {**result, "failed": True, "msg": refusal}
        try:
            if self._is_pipelining_enabled("new"):
                result.update(self._run_direct(module_args, task_vars))
            else:
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

    def _run_direct(self, module_args: dict, task_vars: dict) -> dict:
        source, argument_spec = self._module_code()
        checked = ArgumentSpecValidator(argument_spec).validate(module_args)
        if checked.error_messages:
            return {"failed": True, "msg": "; ".join(checked.error_messages)}
        payload = json.dumps({"source": source, "params": checked.validated_parameters})
        command = f"{shlex.quote(self._python(task_vars))} -c {shlex.quote(BOOTSTRAP)}"
        environment = self._compute_environment_string()
        done = self._low_level_execute_command(f"{environment} {command}", in_data=payload)
        lines = done["stdout"].strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            return {
                "failed": True,
                "msg": f"installer_script gave no result (exit {done['rc']})",
                "module_stdout": done["stdout"][-2000:],
                "module_stderr": done["stderr"][-2000:],
            }

    def _module_code(self) -> tuple[str, dict]:
        """The module's source and ARGUMENT_SPEC (read once per process)."""
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(
            self._task.action, collection_list=self._task.collections
        )
        path = found.plugin_resolved_path
        if path not in _loaded:
            spec = importlib.util.spec_from_file_location("_installer_script_module", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _loaded[path] = (Path(path).read_text(), module.ARGUMENT_SPEC)
        return _loaded[path]

    def _python(self, task_vars: dict) -> str:
        """The node's python: the inventory's, else the one Ansible discovered, else the
        node's python3 (the role supports Debian, whose python3 Ansible itself needs)."""
        configured = task_vars.get("ansible_python_interpreter")
        if configured:
            interpreter = str(self._templar.template(configured))
            if not interpreter.startswith("auto"):  # auto, auto_silent, ...: discovery
                return interpreter
        discovered = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        return str(discovered or "python3")


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
