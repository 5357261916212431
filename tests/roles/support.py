"""Load the roles' modules and filter plugins from their files, and run a module's main()
with its arguments injected (no test host: the modules run in this process)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "playbooks" / "collections"


def load(relative: str):
    """The module or plugin file at REPO/relative, imported under a private name. The
    collection beside the playbooks is importable as Ansible ships it to the node."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    path = REPO / relative
    name = "roles_under_test_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in roles/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


def run(module, args: dict, capsys, check_mode=False) -> dict:
    """module.main() with args; the JSON it exits with (``failed`` set when it failed)."""
    if check_mode:
        args = {**args, "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert (exited.value.code != 0) == bool(result.get("failed")), result
    return result
