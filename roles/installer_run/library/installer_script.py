#!/usr/bin/python3
"""Ansible module: run one script of a catalogue installer under the contract's rules."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

try:
    from ansible.module_utils.basic import AnsibleModule
except ImportError:  # run_direct: the node's python has no Ansible, and needs none
    AnsibleModule = None

DOCUMENTATION = r"""
module: installer_script
short_description: Run an installer's script with the contract's environment and timeout
description:
  - One call does the whole run on the node (each SSH round trip costs more than most of
    the work) - the preflight, placing the wrapper and the installer's files, the script,
    the undo of a failed first install, and the cleanup.
  - The role's action plugin of the same name runs this file's C(run_direct) with the
    node's python (the file and the checked params on its stdin, no AnsiballZ) when the
    connection pipes, and this module otherwise; both give the same result.
  - With C(preflight), an install on a node below the requirements runs nothing and returns
    C(stage=preflight) and the C(reason).
  - With C(files), the installer's copy is written to C(directory) (0700/0600) when it is
    not already the one hashing to C(sha256); other versions' copies beside it are removed.
    C(support_files) are written beside the C(wrapper) (0700) when they differ.
  - Checks that the installer's copy on the node hashes to C(sha256) (every file, with its
    path, as the catalogue hashes it), so only what the portal checked runs.
  - Runs C(wrapper secrets_file script) in a session of its own, stdin from /dev/null, with
    exactly C(environment) plus PATH, HOME and LANG, stdout and stderr into C(log) (0600).
  - C(secrets) (the sensitive inputs, no_log) reach the node inside the module's own input
    (with pipelining, on stdin; never in a file of Ansible's, never on a command line); the
    module writes them to C(secrets_file) (0600, meant for /run) right before the script
    and removes it whatever happens. The wrapper exports them from that file before it
    execs the script, so they are never on a command line either.
  - After C(timeout) seconds the script's process group gets SIGTERM, then SIGKILL, and any
    process still carrying this run's marker is killed too; the exit code is then 124.
  - Returns the exit code, the last C(tail_lines) lines of the log with every sensitive value
    replaced by C(********), and the failing line.
options:
  directory: {type: path, required: true, description: The installer's copy on the node.}
  script: {type: str, required: true, description: The script's file name in C(directory).}
  sha256: {type: str, required: true, description: The hash the catalogue recorded.}
  wrapper: {type: path, required: true, description: The wrapper that exports the secrets.}
  secrets_file: {type: path, required: true, description: Where the wrapper reads C(secrets).}
  secrets:
    type: dict
    default: {}
    description: The sensitive inputs (UPPERCASE names), masked C(********) in the log tail.
  log: {type: path, required: true, description: Where stdout and stderr go (0600).}
  environment: {type: dict, default: {}, description: The script's non-secret environment.}
  timeout: {type: int, required: true, description: Seconds before the script is killed.}
  kill_after: {type: int, default: 10, description: Seconds between SIGTERM and SIGKILL.}
  tail_lines: {type: int, default: 50, description: Lines of the log reported.}
  stage: {type: str, default: install, choices: [install, uninstall], description: What runs.}
  files: {type: dict, default: {}, description: "The installer's files: {path: base64}."}
  support_files: {type: dict, default: {}, description: "Beside the wrapper: {name: base64}."}
  preflight:
    type: dict
    description: >-
      Requirements checked before an install: os_family (list), os_min_version, min_ram_mb,
      min_disk_mb, disk_path (default /var/lib).
  undo_script: {type: str, default: "", description: Run after a failed install (not exit 1).}
  keep_log: {type: bool, default: false, description: Keep the run's logs on the node.}
  keep_log_on_failure: {type: bool, default: false, description: Keep them after a failure.}
  remove_after_uninstall:
    type: path
    description: Removed (the installer's private directory) after an uninstall exits 0.
"""

RETURN = r"""
rc: {description: The script's exit code (124 after the timeout), type: int}
tail: {description: The log's last lines, sensitive values masked, type: str}
failing_line: {description: Where the script failed (ERR trap) or its last line, type: str}
result: {description: changed or unchanged, from the script's "result:" line, type: str}
left_running: {description: Processes of the run still alive after the kill, type: int}
stage: {description: install, uninstall, or preflight when the node was refused, type: str}
reason: {description: Why preflight refused the node, type: str}
uninstall_rc: {description: The undo script's exit code when it ran, type: int}
"""

MASK = "********"
TIMEOUT_RC = 124
FAILED_AT = re.compile(r"^portal-installer: failed at line (\d+): (.*)$")
TIMED_OUT = "portal-installer: timed out"
RESULT_LINE = re.compile(r"result: (changed|unchanged)\s*$")
COPY_NAME = re.compile(r"^[0-9a-f]{64}(\.partial)?$")
NUMERIC_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")
ENVIRONMENT_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
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


def secret_values(secrets: dict) -> list[str]:
    """The values to mask: longest first, so a value containing another is masked whole."""
    values = {as_text(value) for value in secrets.values()}
    return sorted((value for value in values if value), key=len, reverse=True)


def write_secrets(path: Path, secrets: dict) -> None:
    """The wrapper's file: ``export NAME='value'`` lines (shell-quoted), 0600, written
    fresh; none (and no stale one from a run that was killed) when there are no secrets."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if not secrets:
        return
    for name in secrets:
        if not ENVIRONMENT_NAME.match(name):
            raise ValueError(f"refusing the sensitive input name {name!r}")
    lines = "".join(
        f"export {name}={shlex.quote(as_text(value))}\n" for name, value in secrets.items()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(lines)


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


# --- preflight -----------------------------------------------------------------------------


def os_release() -> dict[str, str]:
    fields = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            name, _, value = line.partition("=")
            fields[name] = value.strip().strip('"')
    return fields


def os_version(release: dict[str, str]) -> str:
    """Debian's point release (/etc/debian_version, as Ansible's facts read it), else
    VERSION_ID."""
    if release.get("ID") == "debian":
        with contextlib.suppress(OSError):
            point = Path("/etc/debian_version").read_text().strip()
            if NUMERIC_VERSION.match(point):
                return point
    return release.get("VERSION_ID", "")


def at_least(version: str, minimum: str) -> bool:
    def parts(text: str) -> list[int]:
        return [int(part) for part in text.split(".")]

    wanted = parts(minimum)
    found = parts(version)
    length = max(len(found), len(wanted))
    return found + [0] * (length - len(found)) >= wanted + [0] * (length - len(wanted))


def memory_mb() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def mount_point(path: str) -> str:
    current = os.path.realpath(path)
    while not os.path.ismount(current):
        current = os.path.dirname(current)
    return current


def refusals(requirements: dict) -> list[str]:
    """Why this node does not meet the installer's requirements (the same words the
    portal shows as the installation's reason)."""
    found = []
    release = os_release()
    family = release.get("ID", "unknown").lower()
    families = [str(name).lower() for name in requirements.get("os_family") or []]
    if families and family not in families:
        found.append(f"OS {family} is not one of {', '.join(families)}")
    minimum = str(requirements.get("os_min_version") or "")
    version = os_version(release)
    if minimum and not (NUMERIC_VERSION.match(version) and at_least(version, minimum)):
        found.append(f"OS version {version or 'unknown'} is below {minimum}")
    ram = int(requirements.get("min_ram_mb") or 0)
    if ram > 0 and memory_mb() < ram:
        found.append(f"{memory_mb()} MB of memory, {ram} MB needed")
    disk = int(requirements.get("min_disk_mb") or 0)
    if disk > 0:
        where = mount_point(requirements.get("disk_path") or "/var/lib")
        stats = os.statvfs(where)
        free = stats.f_bavail * stats.f_frsize // (1024 * 1024)
        if free < disk:
            found.append(f"{free} MB free on {where}, {disk} MB needed")
    return found


# --- placing the files ---------------------------------------------------------------------


def private_directory(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(path, 0, 0)
    path.chmod(0o700)


def write_file(path: Path, content: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    path.chmod(mode)


def decoded(files: dict) -> dict[str, bytes]:
    """{relative path: content}; a path leading out of the directory is refused."""
    contents = {}
    for name, text in files.items():
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"refusing the file name {name!r}")
        contents[relative.as_posix()] = base64.b64decode(text, validate=True)
    return contents


def place_support(directory: Path, files: dict) -> bool:
    private_directory(directory)
    changed = False
    for name, content in decoded(files).items():
        path = directory / name
        if (
            path.is_file()
            and path.read_bytes() == content
            and (path.stat().st_mode & 0o777) == 0o700
        ):
            continue
        write_file(path, content, 0o700)
        changed = True
    return changed


def place_installer(directory: Path, files: dict, sha256: str) -> bool:
    """The installer's copy as the catalogue hashed it, written (atomically: a .partial
    directory renamed) only when the copy on the node is not that one. Other versions'
    copies beside it are removed."""
    private_directory(directory.parent)
    for sibling in directory.parent.iterdir():
        if sibling != directory and sibling.is_dir() and COPY_NAME.match(sibling.name):
            shutil.rmtree(sibling)
    if directory.is_dir() and fingerprint(directory) == sha256:
        return False
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    private_directory(partial)
    for name, content in decoded(files).items():
        path = partial / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_file(path, content, 0o600)
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return True


# --- the run -------------------------------------------------------------------------------


def run_one(params: dict, script: str, log: Path, secrets: list[str]) -> dict:
    marker = os.urandom(16).hex()
    rc, left = run_script({**params, "script": script, "log": str(log)}, marker)
    lines = masked_log(log, secrets)
    # The contract has no "changed" exit code; the catalogue's scripts end with
    # "result: changed|unchanged", and a script that says nothing counts as a change.
    result = next((m.group(1) for m in map(RESULT_LINE.search, reversed(lines)) if m), "changed")
    return {
        "rc": rc,
        "tail": "\n".join(lines[-params["tail_lines"] :]),
        "failing_line": failing_line(lines, rc)[:1000],
        "result": result,
        "left_running": left,
    }


def run_and_undo(params: dict, directory: Path) -> dict:
    """The script, and after a failed install (not a validation error) its undo script."""
    secrets = secret_values(params["secrets"])
    write_secrets(Path(params["secrets_file"]), params["secrets"])
    log = Path(params["log"])
    outcome = run_one(params, params["script"], log, secrets)
    outcome["uninstall_rc"] = None
    undo = params["undo_script"]
    if params["stage"] == "install" and outcome["rc"] not in (0, 1) and undo:
        if "/" in undo or not (directory / undo).is_file():
            raise ValueError(f"no script {undo!r} in the installer")
        undone = run_one(params, undo, Path(f"{log}.uninstall"), secrets)
        outcome["uninstall_rc"] = undone["rc"]
    return outcome


def clean_up(params: dict, outcome: dict | None) -> None:
    """Secrets never outlive the run; the logs only when asked to stay."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(params["secrets_file"])
    failed = outcome is None or outcome["rc"] != 0
    if not (params["keep_log"] or (params["keep_log_on_failure"] and failed)):
        for path in (params["log"], f"{params['log']}.uninstall"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    remove = params["remove_after_uninstall"]
    if remove and params["stage"] == "uninstall" and outcome is not None and outcome["rc"] == 0:
        shutil.rmtree(remove, ignore_errors=True)


ARGUMENT_SPEC = {
    "directory": {"type": "path", "required": True},
    "script": {"type": "str", "required": True},
    "sha256": {"type": "str", "required": True},
    "wrapper": {"type": "path", "required": True},
    "secrets_file": {"type": "path", "required": True},
    "secrets": {"type": "dict", "default": {}, "no_log": True},
    "log": {"type": "path", "required": True},
    "environment": {"type": "dict", "default": {}},
    "timeout": {"type": "int", "required": True},
    "kill_after": {"type": "int", "default": 10},
    "tail_lines": {"type": "int", "default": 50},
    "stage": {"type": "str", "default": "install", "choices": ["install", "uninstall"]},
    # no_log: the files' contents stay out of the job's events (they are the
    # catalogue's, and large), not because they are secret
    "files": {"type": "dict", "default": {}, "no_log": True},
    "support_files": {"type": "dict", "default": {}, "no_log": True},
    "preflight": {"type": "dict"},
    "undo_script": {"type": "str", "default": ""},
    "keep_log": {"type": "bool", "default": False},
    "keep_log_on_failure": {"type": "bool", "default": False},
    "remove_after_uninstall": {"type": "path"},
}


class RunFailed(Exception):
    """The run could not start: the task fails with this message (no report)."""


def execute(params: dict) -> dict:
    """The whole run with checked params: the module's result (RunFailed if it could not
    start; the secrets file and the logs are cleaned up either way)."""
    stage = params["stage"]
    if stage == "install" and params["preflight"]:
        refused = refusals(params["preflight"])
        if refused:
            clean_up({**params, "remove_after_uninstall": None}, None)
            return {
                "changed": False,
                "stage": "preflight",
                "reason": "; ".join(refused),
                "rc": None,
            }
    directory = Path(params["directory"])
    outcome = None
    try:
        placed = False
        if params["support_files"]:
            placed = place_support(Path(params["wrapper"]).parent, params["support_files"])
        if params["files"]:
            placed = place_installer(directory, params["files"], params["sha256"]) or placed
        found = fingerprint(directory) if directory.is_dir() else "nothing"
        if found != params["sha256"]:
            raise RunFailed(
                f"the installer's copy hashes to {found[:12]}, not {params['sha256'][:12]}"
            )
        if "/" in params["script"] or not (directory / params["script"]).is_file():
            raise RunFailed(f"no script {params['script']!r} in the installer")
        outcome = run_and_undo(params, directory)
    except (OSError, ValueError) as exc:
        raise RunFailed(f"the run could not start: {exc}") from exc
    finally:
        clean_up(params, outcome)
    ran_clean = outcome["rc"] == 0 and outcome["result"] == "changed"
    return {"changed": ran_clean or placed, "stage": stage, "reason": "", **outcome}


def main() -> None:
    """As an Ansible module (AnsiballZ): when the connection cannot pipe the role's action
    plugin runs it so, and the tests do."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    try:
        result = execute(module.params)
    except RunFailed as exc:
        module.fail_json(msg=str(exc), rc=None)
    module.exit_json(**result)


def run_direct(params: dict) -> dict:
    """As the role's action plugin runs it: this file's source and the params it checked
    against ARGUMENT_SPEC arrive on the node's python's stdin, with no AnsiballZ to build on
    the controller or unpack on the node. The result as main() returns it, every sensitive
    value masked as AnsibleModule would (the tail already is)."""
    try:
        result = execute(params)
    except RunFailed as exc:
        result = {"failed": True, "msg": str(exc), "rc": None}
    secrets = secret_values(params["secrets"])
    return {
        name: mask(value, secrets) if isinstance(value, str) else value
        for name, value in result.items()
    }


if __name__ == "__main__":
    main()
