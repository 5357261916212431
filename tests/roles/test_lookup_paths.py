"""The roles' modules find the shared module_utils, and the playbooks the portal.roles
filters, both ways the playbooks run: ansible-playbook from the repository (the collection
beside the playbooks) and the portal's job runner (private data dir, its own ansible.cfg and
ANSIBLE_COLLECTIONS_PATH). A delete of no workspace on this machine runs the three batch
modules and the playbook's result filter without changing anything."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from portal.jobs import actions
from portal.jobs.choices import JobStatus
from portal.jobs.models import JobEvent
from portal.nodes.choices import Connection
from tests.factories import NodeFactory
from tests.helpers import stubbed_broker
from tests.roles.support import REPO

MODULE_TASKS = {
    "code_server : Ensure the workspaces' config.yaml and unit files are removed",
    "workspace_quota : Ensure the workspace homes and their quota are removed",
    "workspace_user : Ensure the workspace users are removed (only accounts whose home is "
    "the workspace's)",
}


def extra_vars(tmp_path):
    return {
        "workspace_items": [],
        "workspace_root": str(tmp_path / "workspaces"),
        "workspace_quota_backend": "none",
    }


def test_ansible_playbook_from_the_repository(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_SHOW_CUSTOM_STATS="1",
        ANSIBLE_NOCOLOR="1",
    )
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "playbooks/workspace_delete.yml",
            "-e",
            json.dumps(extra_vars(tmp_path)),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in MODULE_TASKS:
        assert re.search(rf"TASK \[{re.escape(name)}\] \**\nok: \[localhost\]", run.stdout), (
            run.stdout
        )
    assert '\tRUN: { "workspace_results": {}}' in run.stdout, run.stdout


@pytest.mark.django_db(transaction=True)
def test_the_portal_job_runner(tmp_path, settings):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    node = NodeFactory(
        name="local-1", connection=Connection.LOCAL, credential=None, address="127.0.0.1"
    )
    with stubbed_broker():
        job = actions.launch(
            playbook="workspace_delete.yml", nodes=[node], extra_vars=extra_vars(tmp_path)
        )
    actions.execute(job.pk, job.signature, worker="test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.status_reason
    done = set(
        JobEvent.objects.filter(job=job, event="runner_on_ok").values_list("task", flat=True)
    )
    assert {name.split(" : ", 1)[1] for name in MODULE_TASKS} <= done
