"""Where the portal's code that runs inside ansible-playbook lives, never imported by the
portal: the callback plugin (``callback/awx_display.py``) and its bytecode, and the launcher
ansible-playbook is started through (``launcher/ansible_playbook.py``)."""

import contextlib
import py_compile
import shutil
import sys
from pathlib import Path

CALLBACK_DIR = Path(__file__).resolve().parent / "callback"
CALLBACK = CALLBACK_DIR / "awx_display.py"
LAUNCHER = Path(__file__).resolve().parent / "launcher" / "ansible_playbook.py"


def controller_command(command: list[str], path: str | None) -> list[str]:
    """ansible-runner's command, with this environment's ``ansible-playbook`` (found on
    ``path``, the run's PATH) started through the launcher by this Python: the same process
    and arguments, ``ansible-playbook`` still in its command line, a faster start. Any other
    command (another Ansible install, another program) as it was."""
    found = shutil.which(command[0], path=path) if command else None
    if not found or Path(command[0]).name != "ansible-playbook":
        return command
    if Path(found).parent != Path(sys.executable).parent:
        return command
    return [sys.executable, str(LAUNCHER), found, *command[1:]]


def compile_callback() -> None:
    """ansible-playbook imports the callback from its source on every run. Where no bytecode
    is ever written (PYTHONDONTWRITEBYTECODE, common in containers) every job compiled it
    again, about 10 ms: a starting worker writes it once, where Python looks for it. Left to
    Ansible if the directory is read-only."""
    with contextlib.suppress(OSError, py_compile.PyCompileError):
        py_compile.compile(str(CALLBACK), doraise=True)
