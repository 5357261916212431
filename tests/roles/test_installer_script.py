"""roles/installer_run's module installer_script, run in this process on a temporary
installer with the role's wrapper: the contract's environment, secrets from the 0600 file
and masked, stdin closed, the failing line, the timeout ending every process of the run."""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
    return {**args, "sha256": _fingerprint(directory, "manifest.yml")[1], "secrets": secrets or {}}


def test_the_script_gets_the_contract_environment_and_the_secrets_masked(installer, capsys):
    args, directory = installer
    body = (
        'echo "names: $(env | cut -d= -f1 | sort | tr "\\n" " ")"\n'
        'echo "server=$SERVER_NAME port=$PORT tls=$TLS"\n'
        'echo "token=$API_TOKEN"\n'
        f'echo "secrets file: $(stat -c %a {args["secrets_file"]})"\n'
        'if read -r line; then echo "stdin: $line"; else echo "no stdin"; fi\n'
        'echo "result: unchanged"\n'
    )
    checked = {**with_script(args, directory, body, {"API_TOKEN": SECRET}), "keep_log": True}
    result = run(module, checked, capsys)
    assert result["rc"] == 0 and not result["changed"] and result["result"] == "unchanged"
    lines = result["tail"].splitlines()
    names = set(lines[0].removeprefix("names: ").split())
    assert {"SERVER_NAME", "PORT", "TLS", "API_TOKEN", "PATH", "HOME", "LANG"} <= names
    assert "BASH_ENV" not in names
    assert lines[1:] == [
        "server=www.example.test port=8080 tls=true",
        "token=********",
        "secrets file: 600",
        "no stdin",
        "result: unchanged",
    ]
    log = Path(args["log"])
    assert SECRET not in log.read_text() and "token=********" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600
    assert not Path(args["secrets_file"]).exists()  # never outlives the run


def test_a_stale_secrets_file_is_never_read_and_a_bad_name_is_refused(installer, capsys):
    args, directory = installer
    stale = Path(args["secrets_file"])
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("export API_TOKEN=left-by-a-killed-run\n")
    body = 'echo "token=${API_TOKEN:-none}"\n'
    result = run(module, with_script(args, directory, body), capsys)
    assert result["rc"] == 0 and result["tail"] == "token=none" and not stale.exists()
    bad = run(module, with_script(args, directory, "touch ran\n", {"A=$(id)": "x"}), capsys)
    assert bad["failed"] and "refusing the sensitive input name" in bad["msg"]
    assert not (directory / "ran").exists() and not stale.exists()


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


# --- one call: preflight, placing the files, the undo, the cleanup ----------------------------


def as_files(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): base64.b64encode(path.read_bytes()).decode()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def shipped(args, tmp_path, body: str, uninstall: str = "echo undone\n"):
    """An installer kept on the controller (tmp_path/source), to be placed by the module."""
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    (source / "install.sh").write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    (source / "uninstall.sh").write_text("#!/usr/bin/env bash\n" + uninstall)
    sha = _fingerprint(source, "manifest.yml")[1]
    directory = Path(args["directory"]).parent / sha
    support = {
        name: as_files(FILES)[name] for name in ("installer-wrapper.sh", "installer-errtrap.sh")
    }
    return {
        **args,
        "directory": str(directory),
        "files": as_files(source),
        "support_files": support,
        "sha256": sha,
    }


def test_the_installers_files_are_placed_once_and_other_versions_removed(
    installer, tmp_path, capsys
):
    args, _ = installer
    old_copy = Path(args["directory"]).parent / ("a" * 64)  # another version's copy
    old_copy.mkdir()
    first = shipped(args, tmp_path, "echo result: changed\n")
    placed = run(module, first, capsys)
    directory = Path(first["directory"])
    assert placed["rc"] == 0 and placed["changed"] and not old_copy.exists()
    assert (directory / "install.sh").stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    assert (Path(args["wrapper"]).parent / "installer-wrapper.sh").exists()
    again = run(module, shipped(args, tmp_path, "echo result: unchanged\n"), capsys)
    assert again["rc"] == 0 and again["changed"] and not directory.exists()  # a new version
    newer = Path(shipped(args, tmp_path, "echo result: unchanged\n")["directory"])
    before = (newer / "install.sh").stat().st_mtime_ns
    same = run(module, shipped(args, tmp_path, "echo result: unchanged\n"), capsys)
    assert same["rc"] == 0 and not same["changed"]  # the same copy: left as it is
    assert (newer / "install.sh").stat().st_mtime_ns == before


def test_a_file_name_leading_out_is_refused_and_nothing_runs(installer, tmp_path, capsys):
    args, _ = installer
    bad = shipped(args, tmp_path, "touch /tmp/never\n")
    bad["files"] = {"../escape.sh": base64.b64encode(b"echo out").decode()}
    result = run(module, bad, capsys)
    assert result["failed"] and "refusing the file name '../escape.sh'" in result["msg"]
    assert not (Path(args["directory"]).parent / "escape.sh").exists()


def test_preflight_refuses_a_node_below_the_requirements_and_runs_nothing(
    installer, tmp_path, capsys
):
    args, _ = installer
    Path(args["secrets_file"]).parent.mkdir(parents=True, exist_ok=True)
    Path(args["secrets_file"]).write_text("export A=b\n")
    checked = shipped(args, tmp_path, "touch ran\n")
    requirements = {"os_family": ["plan9"], "os_min_version": "999", "min_ram_mb": 10**9}
    result = run(module, {**checked, "preflight": requirements}, capsys)
    assert result["stage"] == "preflight" and result["rc"] is None and not result["changed"]
    family = module.os_release().get("ID", "unknown")
    assert result["reason"].startswith(f"OS {family} is not one of plan9; OS version ")
    assert "is below 999" in result["reason"]
    assert result["reason"].endswith(f"MB of memory, {10**9} MB needed")
    assert not Path(checked["directory"]).exists()  # nothing placed, nothing ran
    assert not Path(args["secrets_file"]).exists()
    met = {"os_family": [family], "min_ram_mb": 1, "min_disk_mb": 1}
    assert run(module, {**checked, "preflight": met}, capsys)["rc"] == 0


@pytest.mark.parametrize(
    ("rc", "undo", "undone"),
    [
        (2, "uninstall.sh", True),
        (3, "uninstall.sh", True),
        (1, "uninstall.sh", False),
        (2, "", False),
        (0, "uninstall.sh", False),
    ],
)
def test_a_failed_install_is_undone_except_a_validation_error_or_when_kept(
    installer, tmp_path, capsys, rc, undo, undone
):
    args, _ = installer
    checked = shipped(args, tmp_path, f"exit {rc}\n", uninstall="echo undone\nexit 5\n")
    result = run(module, {**checked, "undo_script": undo, "keep_log_on_failure": True}, capsys)
    assert result["rc"] == rc
    assert result["uninstall_rc"] == (5 if undone else None)
    uninstall_log = Path(f"{args['log']}.uninstall")
    assert uninstall_log.exists() is (undone and rc != 0)


def test_logs_are_removed_unless_kept_and_an_uninstall_removes_the_directory(
    installer, tmp_path, capsys
):
    args, _ = installer
    ok = shipped(args, tmp_path, "echo fine\n")
    run(module, ok, capsys)
    assert not Path(args["log"]).exists()
    run(module, {**ok, "keep_log_on_failure": True}, capsys)
    assert not Path(args["log"]).exists()  # it did not fail
    failing = shipped(args, tmp_path, "exit 2\n")
    run(module, {**failing, "keep_log_on_failure": True}, capsys)
    assert Path(args["log"]).exists()
    private = Path(args["directory"]).parent
    removal = {**failing, "stage": "uninstall", "script": "uninstall.sh"}
    result = run(module, {**removal, "remove_after_uninstall": str(private)}, capsys)
    assert result["rc"] == 0 and result["stage"] == "uninstall" and not private.exists()


# --- the action plugin: the controller's checks and the report ------------------------------

action = load("roles/installer_run/action_plugins/installer_script.py")
SHA = "0" * 64


@pytest.mark.parametrize(
    ("installer_id", "sha256", "script", "undo"),
    [
        ("../etc", SHA, "install.sh", ""),
        ("nginx", SHA[:-1], "install.sh", ""),
        ("nginx", SHA, "../install.sh", ""),
        ("nginx", SHA, "", ""),  # an uninstall without a script
        ("nginx", SHA, "install.sh", "sub/uninstall.sh"),
    ],
)
def test_the_action_refuses_what_could_lead_out_before_the_node(installer_id, sha256, script, undo):
    module_args = {"sha256": sha256, "script": script, "undo_script": undo}
    assert action.unsafe(installer_id, module_args).startswith("refusing an unsafe installer")


def test_the_action_passes_safe_values_and_reports_a_run_or_a_refusal():
    module_args = {"sha256": SHA, "script": "install.sh", "undo_script": "uninstall.sh"}
    assert action.unsafe("my-app2", module_args) == ""
    ran = {"stage": "install", "rc": 3, "tail": "a\nb", "failing_line": "b", "result": "changed"}
    assert action.report(ran, "1.2") == {
        "stage": "install",
        "version": "1.2",
        "rc": 3,
        "result": "changed",
        "tail": "a\nb",
        "failing_line": "b",
        "left_running": 0,
        "uninstall_rc": None,
    }
    refused = {"stage": "preflight", "rc": None, "reason": "64 MB of memory, 256 MB needed"}
    assert action.report(refused, "1.2") == refused


def test_run_direct_is_the_module_on_a_python_without_ansible(installer, tmp_path):
    """What the action plugin does when the connection pipes: the module's file and its
    checked params on the stdin of a python that has no Ansible (the system's here)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    args, _ = installer
    body = 'echo "token=$API_TOKEN"\necho "result: changed"\n'
    given = shipped(args, tmp_path, body)
    checked = ArgumentSpecValidator(module.ARGUMENT_SPEC).validate(
        {**given, "secrets": {"API_TOKEN": SECRET}}
    )
    assert not checked.error_messages
    source = (REPO / "roles/installer_run/library/installer_script.py").read_text()
    result = _run_direct(action, source, checked.validated_parameters)
    assert (
        result["rc"] == 0
        and result["changed"]
        and result["tail"] == ("token=********\nresult: changed")
    )
    assert not Path(args["secrets_file"]).exists()
    broken = {**checked.validated_parameters, "sha256": "f" * 64}
    failed = _run_direct(action, source, broken)
    assert failed["failed"] and "hashes to" in failed["msg"] and failed["rc"] is None


def _run_direct(action, source: str, params: dict) -> dict:
    """The action's bootstrap on a python without Ansible: its last line is the result."""
    done = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", action.BOOTSTRAP],
        input=json.dumps({"source": source, "params": params}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_modules_documentation_names_every_argument():
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(documented) == set(module.ARGUMENT_SPEC)
