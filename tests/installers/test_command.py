"""manage.py installers validate / list / reload: output and exit codes."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from portal.installers import catalogue
from tests.installers.conftest import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]


def test_validate_a_good_catalogue(capsys):
    call_command("installers", "validate")
    assert capsys.readouterr().out.strip() == "2 installers, no problems."


def test_validate_names_each_problem_and_fails(make_installer, capsys):
    bad = make_installer(
        inputs=[
            {"name": "a", "type": "string", "label": "A"},
            {"name": "b", "type": "port", "label": "B"},
            {"name": "c", "type": "port", "label": "C", "default": 0},
        ]
    )
    make_installer(directory="other")
    with pytest.raises(CommandError, match="2 problems"):
        call_command("installers", "validate", "--dir", str(bad.parent))
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"{bad}/manifest.yml: inputs[2].default: type: a port is 1-65535",
        f"{bad.parent}/other/manifest.yml: id: 'app' must equal the directory's name 'other'",
    ]


def test_the_exit_code_from_the_shell(make_installer):
    bad = make_installer(version=2)
    env = {"DEBUG": "true", "PATH": "/usr/bin:/bin", "INSTALLERS_DIR": str(bad.parent)}
    failed = subprocess.run(
        [sys.executable, "manage.py", "installers", "validate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert f"{bad}/manifest.yml: version: 2 is not of type 'string'" in failed.stderr
    env["INSTALLERS_DIR"] = str(CATALOGUE)
    passed = subprocess.run(
        [sys.executable, "manage.py", "installers", "validate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert passed.returncode == 0, passed.stderr
    assert "installers/catalogue" not in passed.stderr


def test_list(capsys):
    call_command("installers", "list")
    lines = capsys.readouterr().out.strip().splitlines()
    sha = catalogue.get("web-server").sha256[:12]
    assert lines[1] == f"web-server\t1.2.0\t{sha}\tWeb server"
    assert lines[0].startswith("minimal\t0.1\t")


def test_reload_announces_a_new_generation(settings, capsys):
    assert not settings.INSTALLERS_GENERATION_FILE.exists()
    call_command("installers", "reload")
    first = settings.INSTALLERS_GENERATION_FILE.read_text()
    call_command("installers", "reload")
    assert settings.INSTALLERS_GENERATION_FILE.read_text() != first
    assert "2 installers" in capsys.readouterr().out


def test_reload_with_problems_still_announces_and_fails(settings, make_installer):
    bad = make_installer(version=2)
    settings.INSTALLERS_DIR = bad.parent
    with pytest.raises(CommandError, match="1 problem"):
        call_command("installers", "reload")
    assert settings.INSTALLERS_GENERATION_FILE.exists()


HELPER = """#!/usr/bin/env bash
log() {{ printf 'app: %s\\n' "$*"; }}
# --- shared helpers (the same in every installer) ---
ready() {{ true; }}
put_file() {{
    local path=$1
    printf '%s' "$2" >"{target}"
}}
# --- inputs ---
put_file /etc/x y
"""


def test_validate_fails_when_a_shared_helper_copy_differs(make_installer, capsys):
    first = make_installer(directory="app")
    (first / "install.sh").write_text(HELPER.format(target="$path"))
    second = make_installer(directory="other", id="other")
    (second / "install.sh").write_text(HELPER.format(target="$path"))
    (second / "uninstall.sh").write_text(HELPER.format(target="$path"))
    call_command("installers", "validate", "--dir", str(first.parent))  # alike: no problem
    (second / "uninstall.sh").write_text(HELPER.format(target="/tmp/fixed-here-only"))
    with pytest.raises(CommandError, match="1 shared helper copies differ"):
        call_command("installers", "validate", "--dir", str(first.parent))
    assert capsys.readouterr().err.strip() == (
        f"{second}/uninstall.sh: shared helper put_file() differs from the copy in "
        f"{first}/install.sh"
    )


def test_the_repos_installers_share_their_helpers_alike():
    from portal.installers import shared_helpers

    directories = [d for d in (ROOT / "installers").iterdir() if d.is_dir()]
    found = shared_helpers.helper_functions(ROOT / "installers" / "nginx" / "install.sh")
    assert {"apt_install", "put_file"} <= set(found)
    assert shared_helpers.drift(directories) == []
