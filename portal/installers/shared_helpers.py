"""The shell helpers every installer carries a copy of stay alike.

Each installer directory is copied to the node and runs on its own, so ``install.sh`` and
``uninstall.sh`` carry their own copies of the catalogue's helpers (``apt_install``,
``put_file``, ...) in a section that starts with ``# --- shared helpers`` and ends at the
next ``# ---`` line. A fix made in one copy and not in the others is what this finds: every
function defined in those sections must be the same text wherever it appears.
``manage.py installers validate`` (``make lint``) reports each copy that differs from the
most common one.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

SECTION_START = "# --- shared helpers"
SECTION_END = "# ---"
FUNCTION_START = re.compile(r"^([a-z_][a-z0-9_]*)\(\) \{")


def helper_functions(script: Path) -> dict[str, str]:
    """{name: its text} of the functions in the script's shared-helpers section."""
    functions: dict[str, str] = {}
    inside = False
    name, body = None, []
    for line in script.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(SECTION_START):
            inside = True
            continue
        if inside and line.startswith(SECTION_END):
            break
        if not inside:
            continue
        started = FUNCTION_START.match(line)
        if name is None and started:
            name, body = started.group(1), [line]
            if line.rstrip().endswith("}"):  # a one-line function
                functions[name], name = line, None
            continue
        if name is not None:
            body.append(line)
            if line == "}":
                functions[name], name = "\n".join(body), None
    return functions


def drift(directories: list[Path]) -> list[tuple[str, str]]:
    """(file, message) for each helper copy that differs from the most common text."""
    copies: dict[str, dict[str, str]] = defaultdict(dict)  # name -> {file: text}
    for directory in directories:
        for script in sorted(directory.glob("*.sh")):
            for name, text in helper_functions(script).items():
                copies[name][str(script)] = text
    found = []
    for name, by_file in sorted(copies.items()):
        usual, _count = Counter(by_file.values()).most_common(1)[0]
        reference = next(file for file, text in by_file.items() if text == usual)
        for file, text in sorted(by_file.items()):
            if text != usual:
                found.append((file, f"shared helper {name}() differs from the copy in {reference}"))
    return found
