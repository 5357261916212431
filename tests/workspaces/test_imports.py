"""No import hides inside a function of the workspaces app to dodge a cycle.

Which way the imports go (models, selectors, routing -> actions -> tasks, api, views, admin;
inside the actions package results -> routes, operate, delete -> create -> runs) is
import-linter's contracts in pyproject.toml (`lint-imports`, part of `make lint`).
"""

import ast
from pathlib import Path

import portal.workspaces

APP = Path(portal.workspaces.__file__).parent
# Django's way: an app's ready() imports what needs the app registry loaded.
ALLOWED = {("apps.py", "ready")}


def test_no_import_inside_a_function():
    nested = []
    for path in sorted(APP.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = str(path.relative_to(APP))
        for function in ast.walk(ast.parse(path.read_text(), name)):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (name, function.name) in ALLOWED:
                continue
            nested += [
                f"{name}:{node.lineno} in {function.name}()"
                for node in ast.walk(function)
                if isinstance(node, ast.Import | ast.ImportFrom)
            ]
    assert nested == []
