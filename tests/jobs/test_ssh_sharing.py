"""Shared SSH masters: who may share one, where they live, and a run that cannot have one."""

import os
from unittest import mock

import pytest

from portal.jobs import actions, ssh
from portal.jobs.choices import JobStatus
from portal.nodes.choices import Connection
from tests.factories import NodeFactory
from tests.helpers import stubbed_broker


@pytest.fixture
def control_dir(settings, tmp_path):
    settings.JOBS_CONTROL_DIR = str(tmp_path)
    settings.JOB_SSH_SHARE_SECONDS = 300
    return tmp_path


@pytest.mark.django_db
def test_a_master_is_shared_only_by_jobs_that_log_in_the_same_way(control_dir, monkeypatch):
    node = NodeFactory()
    monkeypatch.setattr(ssh.time, "time", lambda: 900.0)  # one window: only the login changes
    name = ssh.control_name(node)
    assert ssh.control_name(node) == name and len(name) <= 30
    changes = [("address", "10.9.9.9"), ("ssh_port", 2222)]
    for field, value in changes:
        before = getattr(node, field)
        setattr(node, field, value)
        assert ssh.control_name(node) != name, field
        setattr(node, field, before)
    node.credential.username = ""  # the node's own ssh_user logs in
    name = ssh.control_name(node)
    node.ssh_user = "someone-else"
    assert ssh.control_name(node) != name
    node.credential.secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nrotated\n"
    assert ssh.control_name(node) != name


@pytest.mark.django_db
def test_a_master_is_not_reused_past_its_window(control_dir, settings):
    node = NodeFactory()
    with mock.patch("portal.jobs.ssh.time.time", return_value=900.0):
        first = ssh.control_name(node)
    with mock.patch("portal.jobs.ssh.time.time", return_value=900.0 + 299):
        assert ssh.control_name(node) == first
    with mock.patch("portal.jobs.ssh.time.time", return_value=900.0 + 300):
        assert ssh.control_name(node) != first


@pytest.mark.django_db
def test_only_ssh_nodes_get_a_control_path(control_dir):
    remote = NodeFactory(name="remote")
    local = NodeFactory(name="local", connection=Connection.LOCAL, credential=None)
    hostvars = {"remote": {}, "local": {}}
    ssh.add_control_paths(hostvars, [remote, local], ssh.shared_dir())
    path = hostvars["remote"]["ansible_control_path"]
    assert path.startswith(str(control_dir / f"portal-ssh-{os.geteuid()}"))
    assert hostvars["local"] == {}


def test_the_shared_directory_is_private(control_dir):
    directory = ssh.shared_dir()
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    directory.chmod(0o755)
    with pytest.raises(ssh.ControlDirError, match="0700"):
        ssh.shared_dir()


@pytest.mark.django_db(transaction=True)
def test_a_run_without_a_private_control_dir_is_an_error_not_a_stuck_job(control_dir):
    (control_dir / f"portal-ssh-{os.geteuid()}").mkdir(mode=0o755)
    os.chmod(control_dir / f"portal-ssh-{os.geteuid()}", 0o750)  # noqa: S103 - on purpose
    node = NodeFactory()
    with stubbed_broker():
        job = actions.launch(playbook="ping.yml", nodes=[node])
    actions.execute(job.pk, job.signature, worker="w")
    job.refresh_from_db()
    assert job.status == JobStatus.ERROR
    assert "SSH control directory" in job.reason and "0700" in job.reason
