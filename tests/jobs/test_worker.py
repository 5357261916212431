"""With a real Celery worker: dispatch, SIGKILL mid-job, a broker that was down at launch."""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from portal.jobs import actions, orphans
from portal.jobs.choices import TERMINAL, JobStatus
from portal.jobs.models import Job
from portal.jobs.processes import carrying, descendants
from tests.helpers import stubbed_broker
from tests.jobs.conftest import FINISHED, PLAYBOOKS
from tests.waiting import wait_for, with_log_tail

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, queue: str, log_path: Path, env: dict):
        self.queue, self.env = queue, env
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--queues",
                queue,
                "--concurrency",
                "1",
                "--hostname",
                f"{queue}@%h",
                "--loglevel",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout=60):
        wait_for(
            lambda: "ready." in self.log_path.read_text(),
            timeout,
            0.2,
            with_log_tail("the worker to start", self.log_path),
        )

    def kill(self, sig=signal.SIGKILL):
        """Signal the worker and its pool processes (they run in process groups of their
        own, see portal/celery.py), as a machine loss or a kill -9 of the whole tree would."""
        if self.process.poll() is None:
            pool = descendants(self.process.pid)
            os.killpg(self.process.pid, sig)
            for pid in pool:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            self.process.wait(timeout=30)

    def kill_celery_only(self):
        """SIGKILL the worker and its pool process, nothing else: the run's processes are
        left to what the portal does about a dead worker (the OOM killer or a `kill -9` of
        the celery processes does this; only ansible-playbook dies with them)."""
        pool = [pid for pid in descendants(self.process.pid) if _parent(pid) == self.process.pid]
        for pid in [self.process.pid, *pool]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self) -> "Worker":
        started = Worker(self.queue, self.log_path.with_suffix(".restarted.log"), self.env)
        started.wait_ready()
        return started

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown closes the pool
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
        self.log.close()


@pytest.fixture
def worker(settings, tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.JOB_LOST_AFTER = 3
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_DEFAULT_QUEUE": queue,
        "PLAYBOOKS_DIR": str(PLAYBOOKS),
        "JOBS_WORK_DIR": str(tmp_path / "worker-jobs"),
        "PORTAL_VAR_DIR": str(settings.VAR_DIR),
        "JOB_HEARTBEAT_SECONDS": "0.5",
    }
    started = Worker(queue, tmp_path / "worker.log", env)
    started.wait_ready()
    yield started
    started.stop()


def _status(job) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def test_worker_runs_a_dispatched_job(worker, local_node):
    job = actions.launch(playbook="many.yml", nodes=[local_node], extra_vars={"steps": 10})
    wait_for(
        lambda: _status(job) in TERMINAL,
        90,
        0.2,
        with_log_tail("the job to finish", worker.log_path),
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    assert job.worker.startswith(settings_queue(job)) and job.dispatched_at
    assert job.event_count == job.events.count() == job.events.order_by("-counter")[0].counter


def settings_queue(job) -> str:
    return job.queue


def test_sigkilled_worker_leaves_a_lost_job_and_its_owner_is_told(worker, local_node):
    job = actions.launch(
        playbook="sleep.yml",
        action="tests.recorded",
        nodes=[local_node],
        extra_vars={"seconds": 97},
    )
    wait_for(
        lambda: _status(job) == JobStatus.RUNNING,
        60,
        0.2,
        with_log_tail("the job to run", worker.log_path),
    )
    # The task's own process is forked by then, so the kill below sees the whole tree.
    wait_for(lambda: _pgrep("sleep 97"), 30, 0.2, "the task to start sleeping")
    worker.kill(signal.SIGKILL)

    def reaped():
        return actions.reap_lost() or _status(job) == JobStatus.LOST

    # The design's bound: a SIGKILLed worker's job is `lost` within 60 s.
    wait_for(reaped, 60, 0.2, "the reaper to mark the job lost")
    job.refresh_from_db()
    assert job.status == JobStatus.LOST and "stopped reporting" in job.reason
    assert [(job.pk, JobStatus.LOST)] == FINISHED
    # The worker's ansible-playbook died with it (parent-death signal): no new tasks start.
    wait_for(lambda: not _pgrep("ansible-playbook.*sleep.yml"), 10, 0.2, "ansible-playbook to die")


def test_job_launched_while_broker_was_down_runs_after_it_returns(worker, local_node):
    with stubbed_broker(side_effect=ConnectionError("broker down")):
        job = actions.launch(playbook="echo.yml", nodes=[local_node])
    assert _status(job) == JobStatus.PENDING
    assert actions.sweep_pending(older_than=timedelta(0)) == 1  # the beat task, broker back
    wait_for(
        lambda: _status(job) in TERMINAL,
        90,
        0.2,
        with_log_tail("the job to finish", worker.log_path),
    )
    assert _status(job) == JobStatus.SUCCESSFUL


def _parent(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return None


def _run_processes(job) -> list[int]:
    """Processes on this machine carrying the job's run tag (every process of its run)."""
    return sorted(
        pid for pid, tag in carrying(orphans.RUN_VAR).items() if tag == orphans.run_tag(job)
    )


def _unique_seconds() -> int:
    return 900 + secrets.randbelow(9000)  # a `sleep N` no one else runs


def test_sigkilled_worker_leaves_no_process_of_its_run(worker, local_node, settings):
    seconds = _unique_seconds()
    job = actions.launch(playbook="sleep.yml", nodes=[local_node], extra_vars={"seconds": seconds})
    wait_for(
        lambda: _pgrep(f"^sleep {seconds}$"),
        60,
        0.2,
        with_log_tail("the task to start sleeping", worker.log_path),
    )
    worker.kill_celery_only()
    assert _pgrep(f"^sleep {seconds}$")  # what the kill alone leaves: Ansible's forks

    # Every reaper run (every 10 s) ends what dead workers left on its machine.
    def nothing_left():
        actions.reap_lost()
        return not _pgrep(f"^sleep {seconds}$") and not _run_processes(job)

    wait_for(nothing_left, settings.JOB_LOST_AFTER + 10, 0.2, "the run's processes to be gone")
    wait_for(
        lambda: actions.reap_lost() or _status(job) == JobStatus.LOST,
        30,
        0.2,
        "the job to be reaped as lost",
    )


def test_restarted_worker_leaves_no_job_dir_and_no_secret_on_disk(worker, local_node, tmp_path):
    secret, seconds = f"pw-{uuid.uuid4().hex}", _unique_seconds()
    work_dir = Path(worker.env["JOBS_WORK_DIR"])
    job = actions.launch(
        playbook="secret.yml",
        action="tests.recorded",
        nodes=[local_node],
        extra_vars={
            "api_password": secret,
            "out_file": str(tmp_path / "out"),
            "sleep_seconds": seconds,
        },
    )
    wait_for(
        lambda: _pgrep(f"^sleep {seconds}$"),
        60,
        0.2,
        with_log_tail("the task to start sleeping", worker.log_path),
    )
    assert _files_containing(work_dir, secret)  # decrypted for the run, as it must be
    worker.kill_celery_only()

    restarted = worker.restart()
    try:
        assert not list(work_dir.glob("job-*"))
        assert _files_containing(work_dir, secret) == []
        assert not _pgrep(f"^sleep {seconds}$") and not _run_processes(job)
    finally:
        restarted.stop()


def _files_containing(directory: Path, text: str) -> list[Path]:
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            with contextlib.suppress(OSError):
                if path.is_file() and text.encode() in path.read_bytes():
                    found.append(path)
    return found


def _pgrep(pattern: str) -> bool:
    return bool(subprocess.run(["pgrep", "-f", pattern], capture_output=True).stdout.strip())
