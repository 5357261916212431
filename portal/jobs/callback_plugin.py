"""Where the portal's Ansible callback plugin lives (``callback/awx_display.py``, loaded by
ansible-playbook, never imported by the portal), and its bytecode."""

import contextlib
import py_compile
from pathlib import Path

CALLBACK_DIR = Path(__file__).resolve().parent / "callback"
CALLBACK = CALLBACK_DIR / "awx_display.py"


def compile_callback() -> None:
    """ansible-playbook imports the callback from its source on every run. Where no bytecode
    is ever written (PYTHONDONTWRITEBYTECODE, common in containers) every job compiled it
    again, about 10 ms: a starting worker writes it once, where Python looks for it. Left to
    Ansible if the directory is read-only."""
    with contextlib.suppress(OSError, py_compile.PyCompileError):
        py_compile.compile(str(CALLBACK), doraise=True)
