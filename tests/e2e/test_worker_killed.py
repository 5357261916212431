"""A worker SIGKILLed mid-task over SSH: its task ends on the node too, and nothing of the run
stays on this machine (portal/jobs/orphans.py), with a real worker, broker and test host."""

import os
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from portal.jobs import actions, orphans, ssh
from portal.jobs.choices import TERMINAL, JobStatus
from portal.jobs.models import Job
from tests.jobs.conftest import PLAYBOOKS as TEST_PLAYBOOKS
from tests.jobs.test_worker import Worker, _database_url, _run_processes, _status
from tests.waiting import wait_for, with_log_tail

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def playbooks(settings, tmp_path) -> Path:
    """A long task, and the reaper's playbook that ends a lost run on its nodes."""
    directory = tmp_path / "playbooks"
    directory.mkdir()
    shutil.copy(TEST_PLAYBOOKS / "sleep.yml", directory)
    shutil.copy(Path(django_settings.BASE_DIR) / "playbooks" / orphans.END_RUN_PLAYBOOK, directory)
    settings.PLAYBOOKS_DIR = directory
    return directory


@pytest.fixture
def control_dir(settings):
    directory = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))  # short: socket paths
    settings.JOBS_CONTROL_DIR = str(directory)
    yield directory
    ssh.stop_masters(ssh.shared_dir(), how="exit")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def worker(settings, tmp_path, playbooks, control_dir):
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.JOB_LOST_AFTER = 3
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_DEFAULT_QUEUE": queue,
        "PLAYBOOKS_DIR": str(playbooks),
        "JOBS_WORK_DIR": str(tmp_path / "worker-jobs"),
        "JOBS_CONTROL_DIR": str(control_dir),
        "PORTAL_VAR_DIR": str(settings.VAR_DIR),
        "JOB_HEARTBEAT_SECONDS": "0.5",
    }
    started = Worker(queue, tmp_path / "worker.log", env)
    started.wait_ready()
    yield started
    started.stop()


def _log_in_as_deploy_with_become(node) -> None:
    """The task then runs as root under sudo, which resets the environment."""
    credential = node.credential
    credential.pk, credential.name, credential.username = None, f"{credential.name}-d", "deploy"
    credential.save()
    node.credential, node.become = credential, True
    node.save()


@pytest.mark.parametrize("become", [False, True], ids=["root", "sudo"])
def test_killed_workers_task_ends_on_the_node_too(test_hosts, portal_nodes, worker, become):
    node = portal_nodes[0]
    host = test_hosts[node.name]
    if become:
        _log_in_as_deploy_with_become(node)
    seconds = 900 + secrets.randbelow(9000)  # a `sleep N` no one else runs

    def sleeping_on_node() -> bool:
        return host.run(f"pgrep -fx 'sleep {seconds}'").returncode == 0

    def tagged_on_node() -> list[str]:
        """The node's processes whose environment carries the run's tag."""
        entry = f"{orphans.RUN_VAR}={orphans.run_tag(job)}"
        return host.run(f"grep -lszx '{entry}' /proc/[0-9]*/environ").stdout.split()

    job = actions.launch(playbook="sleep.yml", nodes=[node], extra_vars={"seconds": seconds})
    wait_for(
        sleeping_on_node, 90, 0.2, with_log_tail("the task to sleep on the node", worker.log_path)
    )
    assert len(tagged_on_node()) >= 2  # the module and its sleep carry the tag
    if become:  # deploy's shell runs sudo, which runs the module as root
        assert host.run("pgrep -u deploy -f BECOME-SUCCESS").returncode == 0
        assert host.run(f"pgrep -u root -fx 'sleep {seconds}'").returncode == 0
    worker.kill_celery_only()
    assert sleeping_on_node()  # the kill alone leaves it running there

    restarted = worker.restart()  # what a supervisor does; it runs the reaper's job
    try:
        wait_for(
            lambda: actions.reap_lost() or _status(job) == JobStatus.LOST,
            30,
            0.2,
            "the reaper to mark the job lost",
        )
        wait_for(
            lambda: not sleeping_on_node(),
            90,
            0.2,
            with_log_tail("the task to end on the node", restarted.log_path),
        )
        ending = Job.objects.get(action=orphans.END_RUN_ACTION, target_id=str(job.pk))
        wait_for(lambda: _status(ending) in TERMINAL, 30, 0.2, "the ending job to finish")
        ending.refresh_from_db()
        assert ending.status == JobStatus.SUCCESSFUL, ending.reason
        assert tagged_on_node() == []
        assert _run_processes(job) == []  # nor anything of it on this machine
    finally:
        restarted.stop()
