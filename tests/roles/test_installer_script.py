"""roles/installer_run's module installer_script, run in this process on a temporary
installer with the role's wrapper: the contract's environment, secrets from the 0600 file
and masked, stdin closed, the failing line, the timeout ending every process of the run."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from portal.installers.loader import _fingerprint
from tests.roles.support import REPO, load, run

module = load("roles/installer_run/library/installer_script.py")
FILES = REPO / "roles" / "installer_run" / "files"
SECRET = "pa55-w0rd-'quoted' $(id) value"


@pytest.fixture
def installer(tmp_path):
    """(args for the module, the installer's directory); write install.sh yourself."""
    base = tmp_path / "runs"
    directory = base / "app" / "copy"
    directory.mkdir(parents=True)
    for name in ("installer-wrapper.sh", "installer-errtrap.sh"):
        shutil.copy(FILES / name, base / name)
        (base / name).chmod(0o700)
    args = {
        "directory": str(directory),
        "script": "install.sh",
        "wrapper": str(base / "installer-wrapper.sh"),
        "secrets_file": str(base / "app" / "secrets.env"),
        "log": str(base / "app" / "run.log"),
        "environment": {"SERVER_NAME": "www.example.test", "PORT": 8080, "TLS": True},
        "timeout": 30,
        "kill_after": 1,
    }
    return args, directory


def with_script(args, directory, body, secrets=None):
    (directory / "install.sh").write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    if secrets:
        lines = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in secrets.items())
        Path(args["secrets_file"]).write_text(lines)
        os.chmod(args["secrets_file"], 0o600)
    return {**args, "sha256": _fingerprint(directory, "manifest.yml")[1]}


def test_the_script_gets_the_contract_environment_and_the_secrets_masked(installer, capsys):
    args, directory = installer
    body = (
        'echo "names: $(env | cut -d= -f1 | sort | tr "\\n" " ")"\n'
        'echo "server=$SERVER_NAME port=$PORT tls=$TLS"\n'
        'echo "token=$API_TOKEN"\n'
        'if read -r line; then echo "stdin: $line"; else echo "no stdin"; fi\n'
        'echo "result: unchanged"\n'
    )
    result = run(module, with_script(args, directory, body, {"API_TOKEN": SECRET}), capsys)
    assert result["rc"] == 0 and not result["changed"] and result["result"] == "unchanged"
    lines = result["tail"].splitlines()
    names = set(lines[0].removeprefix("names: ").split())
    assert {"SERVER_NAME", "PORT", "TLS", "API_TOKEN", "PATH", "HOME", "LANG"} <= names
    assert "BASH_ENV" not in names
    assert lines[1:] == [
        "server=www.example.test port=8080 tls=true",
        "token=********",
        "no stdin",
        "result: unchanged",
    ]
    log = Path(args["log"])
    assert SECRET not in log.read_text() and "token=********" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def test_the_failing_line_is_the_err_traps_report_or_the_last_line(installer, capsys):
    args, directory = installer
    failed = run(module, with_script(args, directory, "echo start\nfalse\necho never\n"), capsys)
    assert failed["rc"] == 1 and failed["failing_line"] == "line 4: false"
    stated = 'echo "error: the port is taken" >&2\nexit 3\n'
    told = run(module, with_script(args, directory, stated), capsys)
    assert told["rc"] == 3 and told["failing_line"] == "error: the port is taken"
    changed = run(module, with_script(args, directory, "echo did it\n"), capsys)
    assert changed["changed"] and changed["failing_line"] == ""


def test_a_copy_that_is_not_the_catalogues_runs_nothing(installer, capsys):
    args, directory = installer
    checked = with_script(args, directory, "touch ran\n")
    (directory / "extra.sh").write_text("echo smuggled\n")
    result = run(module, checked, capsys)
    assert result["failed"] and "hashes to" in result["msg"]
    assert not (directory / "ran").exists()


def test_the_timeout_ends_every_process_of_the_run_with_124(installer, capsys):
    args, directory = installer
    body = "sleep 3631 &\nsetsid sleep 3632 &\necho waiting\nsleep 3633\n"
    result = run(module, {**with_script(args, directory, body), "timeout": 1}, capsys)
    assert result["rc"] == 124 and result["left_running"] == 0
    assert result["failing_line"] == "timed out; last output: waiting"
    left = subprocess.run(["pgrep", "-f", "sleep 363[123]"], capture_output=True, text=True)
    assert left.stdout == ""


def test_the_fingerprint_is_the_catalogues(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "install.sh").write_text("echo hi\n")
    (tmp_path / "sub" / "data.txt").write_bytes(b"\x00\x01binary")
    assert module.fingerprint(tmp_path) == _fingerprint(tmp_path, "manifest.yml")[1]
