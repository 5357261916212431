"""ansible-playbook started through the portal's launcher (portal/jobs/launcher): the same
program and arguments, with Python's collector paused while Ansible imports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.jobs.callback_plugin import LAUNCHER, controller_command
from portal.jobs.choices import JobStatus
from tests.jobs.test_runner import run_now

BIN = Path(sys.executable).parent
STUB_PLAYBOOK_CLI = """
import gc, json, sys
COLLECTING_WHILE_IMPORTED = gc.isenabled()

def main():
    print(json.dumps({
        "collecting_while_imported": COLLECTING_WHILE_IMPORTED,
        "collecting": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
        "argv": sys.argv,
    }))
    return 3
"""


@pytest.mark.django_db(transaction=True)
def test_a_run_starts_this_environments_ansible_playbook_through_the_launcher(local_node):
    job = run_now(playbook="controller.yml", nodes=[local_node])
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    shown = job.events.get(event="runner_on_ok").event_data["res"]["msg"].split("\n")
    assert shown[:3] == [sys.executable, str(LAUNCHER), str(BIN / "ansible-playbook")]
    assert shown[-1].endswith("controller.yml")


def test_the_launcher_collects_again_once_ansible_is_imported(tmp_path):
    cli = tmp_path / "ansible" / "cli"
    cli.mkdir(parents=True)
    for package in (tmp_path / "ansible", cli):
        (package / "__init__.py").write_text("")
    (cli / "playbook.py").write_text(STUB_PLAYBOOK_CLI)
    started = subprocess.run(
        [sys.executable, str(LAUNCHER), "/opt/ansible/bin/ansible-playbook", "-i", "hosts.yml"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 3, started.stderr  # ansible-playbook's own exit code
    seen = json.loads(started.stdout)
    assert seen["collecting_while_imported"] is False
    assert seen["collecting"] is True and seen["frozen"] > 0
    assert seen["argv"] == ["/opt/ansible/bin/ansible-playbook", "-i", "hosts.yml"]


def test_the_launcher_runs_the_real_ansible_playbook():
    real = str(BIN / "ansible-playbook")
    direct = subprocess.run([real, "--version"], capture_output=True, text=True, timeout=60)
    launched = subprocess.run(
        [sys.executable, str(LAUNCHER), real, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert launched.returncode == direct.returncode == 0, launched.stderr
    assert launched.stdout == direct.stdout


def test_only_this_environments_ansible_playbook_goes_through_the_launcher(tmp_path):
    path = f"{BIN}:/usr/bin:/bin"
    assert controller_command(["ansible-playbook", "-i", "h.yml", "p.yml"], path) == [
        sys.executable,
        str(LAUNCHER),
        str(BIN / "ansible-playbook"),
        "-i",
        "h.yml",
        "p.yml",
    ]
    other = tmp_path / "ansible-playbook"  # another install, first on the run's PATH
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert controller_command(["ansible-playbook", "p.yml"], f"{tmp_path}:{path}") == [
        "ansible-playbook",
        "p.yml",
    ]
    assert controller_command(["ansible", "all", "-m", "ping"], path)[0] == "ansible"
    assert controller_command(["ansible-playbook"], "/nonexistent") == ["ansible-playbook"]
