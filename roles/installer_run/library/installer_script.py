#!/usr/bin/python3
"""Ansible module: run one script of a catalogue installer under the contract's rules."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: installer_script
short_description: Run an installer's script with the contract's environment and timeout
description:
  - Checks that the installer's copy on the node hashes to C(sha256) (every file, with its
    path, as the catalogue hashes it), so only what the portal checked runs.
  - Runs C(wrapper secrets_file script) in a session of its own, stdin from /dev/null, with
    exactly C(environment) plus PATH, HOME and LANG, stdout and stderr into C(log) (0600).
  - The wrapper exports the sensitive inputs from C(secrets_file) (0600) before it execs the
    script: they are never on a command line.
  - After C(timeout) seconds the script's process group gets SIGTERM, then SIGKILL, and any
    process still carrying this run's marker is killed too; the exit code is then 124.
  - Returns the exit code, the last C(tail_lines) lines of the log with every sensitive value
    replaced by C(********), and the failing line.
options:
  directory: {type: path, required: true, description: The installer's copy on the node.}
  script: {type: str, required: true, description: The script's file name in C(directory).}
  sha256: {type: str, required: true, description: The hash the catalogue recorded.}
  wrapper: {type: path, required: true, description: The wrapper that exports the secrets.}
  secrets_file: {type: path, required: true, description: Sensitive inputs (may be absent).}
  log: {type: path, required: true, description: Where stdout and stderr go (0600).}
  environment: {type: dict, default: {}, description: The script's non-secret environment.}
  timeout: {type: int, required: true, description: Seconds before the script is killed.}
  kill_after: {type: int, default: 10, description: Seconds between SIGTERM and SIGKILL.}
  tail_lines: {type: int, default: 50, description: Lines of the log reported.}
"""

RETURN = r"""
rc: {description: The script's exit code (124 after the timeout), type: int}
tail: {description: The log's last lines, sensitive values masked, type: str}
failing_line: {description: Where the script failed (ERR trap) or its last line, type: str}
result: {description: changed or unchanged, from the script's "result:" line, type: str}
left_running: {description: Processes of the run still alive after the kill, type: int}
"""

MASK = "********"
TIMEOUT_RC = 124
FAILED_AT = re.compile(r"^portal-installer: failed at line (\d+): (.*)$")
TIMED_OUT = "portal-installer: timed out"
RESULT_LINE = re.compile(r"result: (changed|unchanged)\s*$")
BASE_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


def fingerprint(directory: Path) -> str:
    """The catalogue's hash (portal/installers/loader.py, _fingerprint): every file, sorted,
    as "relative path NUL length NUL" then its content."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        content = path.read_bytes()
        name = path.relative_to(directory).as_posix()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def secret_values(path: Path) -> list[str]:
    """The values of the wrapper's file (``export NAME='value'`` lines, shell-quoted)."""
    if not path.is_file():
        return []
    words = shlex.split(path.read_text(), posix=True)
    values = [word.split("=", 1)[1] for word in words if "=" in word]
    # Longest first, so a value containing another is masked whole.
    return sorted({value for value in values if value}, key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def as_text(value: object) -> str:
    """An environment value as the contract spells it (an operator's ``-e NAME=12`` arrives
    as a number, ``true`` as a boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def run_script(params: dict, marker: str) -> tuple[int, int]:
    """(exit code, processes left running after a kill)."""
    given = {name: as_text(value) for name, value in params["environment"].items()}
    environment = {**BASE_ENVIRONMENT, **given, "PORTAL_INSTALLER_RUN": marker}
    command = [params["wrapper"], params["secrets_file"], params["script"]]
    fd = os.open(params["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=params["directory"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the timeout ends all of it
        )
        try:
            return process.wait(timeout=params["timeout"]), 0
        except subprocess.TimeoutExpired:
            log.write(f"\n{TIMED_OUT} after {params['timeout']}s\n".encode())
            log.flush()
            return TIMEOUT_RC, end_run(process, marker, params["kill_after"])


def end_run(process: subprocess.Popen, marker: str, kill_after: int) -> int:
    """SIGTERM the group, SIGKILL it after ``kill_after``; then kill whatever still carries
    the run's marker (a child that left the group). Returns how many are left alive."""
    for sig, wait in ((signal.SIGTERM, kill_after), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and (process.poll() is None or marked(marker)):
            time.sleep(0.1)
        if process.poll() is not None and not marked(marker):
            return 0
    for pid in marked(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    return len(marked(marker))


def marked(marker: str) -> list[int]:
    """Processes whose environment carries this run's marker (they inherited it)."""
    needle = f"PORTAL_INSTALLER_RUN={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def masked_log(path: Path, secrets: list[str]) -> list[str]:
    """The log's lines with every sensitive value masked, the file rewritten so (it may be
    kept on the node for debugging)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    masked = mask(text, secrets)
    if masked != text:
        path.write_text(masked)
    return masked.splitlines()


def failing_line(lines: list[str], rc: int) -> str:
    """Where the script failed: with set -e the ERR trap reports right before bash exits
    (the line, and the last command bash ran: a function's ``return 2`` is reported at the
    line that called it); the first of the last block of reports is the earliest. An
    explicit ``exit N`` leaves no report: then the last line the script printed (its own
    error message)."""
    if rc == 0:
        return ""
    body = [line for line in lines if line.strip() and not line.startswith(TIMED_OUT)]
    reports = []
    for line in reversed(body):
        found = FAILED_AT.match(line)
        if not found:
            break
        reports.append(f"line {found.group(1)}: {found.group(2)}")
    where = reports[-1] if reports else (body[-1] if body else "")
    return f"timed out; last output: {where}" if rc == TIMEOUT_RC else where


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "script": {"type": "str", "required": True},
            "sha256": {"type": "str", "required": True},
            "wrapper": {"type": "path", "required": True},
            "secrets_file": {"type": "path", "required": True},
            "log": {"type": "path", "required": True},
            "environment": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "required": True},
            "kill_after": {"type": "int", "default": 10},
            "tail_lines": {"type": "int", "default": 50},
        },
        supports_check_mode=False,
    )
    params = module.params
    directory = Path(params["directory"])
    found = fingerprint(directory)
    if found != params["sha256"]:
        module.fail_json(
            msg=f"the installer's copy hashes to {found[:12]}, not {params['sha256'][:12]}",
            rc=None,
        )
    if "/" in params["script"] or not (directory / params["script"]).is_file():
        module.fail_json(msg=f"no script {params['script']!r} in the installer", rc=None)
    secrets = secret_values(Path(params["secrets_file"]))
    marker = os.urandom(16).hex()
    rc, left = run_script(params, marker)
    lines = masked_log(Path(params["log"]), secrets)
    tail = lines[-params["tail_lines"] :]
    # The contract has no "changed" exit code; the catalogue's scripts end with
    # "result: changed|unchanged", and a script that says nothing counts as a change.
    result = next((m.group(1) for m in map(RESULT_LINE.search, reversed(lines)) if m), "changed")
    module.exit_json(
        changed=rc == 0 and result == "changed",
        rc=rc,
        tail="\n".join(tail),
        failing_line=failing_line(lines, rc)[:1000],
        result=result,
        left_running=left,
    )


if __name__ == "__main__":
    main()
