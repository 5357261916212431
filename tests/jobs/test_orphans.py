"""What a dead worker left: its run's processes, its data dir, its modules on the nodes
(portal/jobs/orphans.py). The SIGKILL of a real worker is in test_worker.py."""

import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from portal import settings as portal_settings
from portal.jobs import actions, orphans, processes, runner
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.processes import descendants
from portal.nodes.choices import Connection
from tests.factories import NodeFactory
from tests.waiting import wait_for


def _dead_token() -> str:
    child = subprocess.Popen(["sleep", "60"])
    token = orphans.owner_token(child.pid)
    child.kill()
    child.wait()
    return token


def test_owner_token_names_a_live_process_until_it_ends():
    assert orphans.owner_alive(orphans.owner_token())
    assert not orphans.owner_alive(_dead_token())
    boot, pid, started = orphans.owner_token().split(".")
    assert not orphans.owner_alive(f"{'0' * 8}.{pid}.{started}")  # before a reboot
    assert not orphans.owner_alive(f"{boot}.{pid}.{int(started) + 1}")  # pid reused


def _process(owner: str, argv0: str = "sleep", child: str = "") -> subprocess.Popen:
    env = {**os.environ, orphans.OWNER_VAR: owner}
    script = f"{child} exec -a '{argv0}' sleep 60"
    return subprocess.Popen(["bash", "-c", script], env=env, start_new_session=True)


def _execed(process: subprocess.Popen) -> bool:
    try:
        return not Path(f"/proc/{process.pid}/cmdline").read_bytes().startswith(b"bash\0")
    except OSError:
        return False


def _ended(process: subprocess.Popen) -> bool:
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_processes_of_dead_owners_are_killed_live_ones_and_ssh_masters_spared():
    orphan, live = _process(_dead_token()), _process(orphans.owner_token())
    # A master through a bastion has a child (ssh -W) that carries the variable too.
    master = _process(_dead_token(), argv0="ssh: /tmp/cp/n1-abc [mux]", child="sleep 61 &")
    proxy: list[int] = []
    try:
        # bash has forked the master's child and every bash has exec'd what it stands for
        wait_for(
            lambda: all(_execed(p) for p in (orphan, live, master)) and descendants(master.pid),
            10,
            0.05,
            "the test processes to start",
        )
        proxy = descendants(master.pid)
        assert orphans.kill_orphaned_processes() >= 1
        assert _ended(orphan)
        assert live.poll() is None and master.poll() is None
        assert proxy and all(processes.start_time(pid) for pid in proxy)
    finally:
        for pid in proxy:
            os.kill(pid, signal.SIGKILL)
        for process in (orphan, live, master):
            process.kill()
            process.wait()


@pytest.mark.django_db
def test_data_dirs_of_dead_owners_are_removed_running_ones_kept(settings, tmp_path):
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.VAR_DIR = tmp_path / "var"
    running = Job.objects.create(
        playbook="ping.yml", queue="q", timeout=1, idle_timeout=1, status=JobStatus.RUNNING
    )
    names = {
        "dead": f"job-1-{_dead_token()}-abc",
        "live": f"job-2-{orphans.owner_token()}-abc",
        "legacy_ended": "job-999-abc",  # named before owners were recorded; job gone
        "legacy_running": f"job-{running.pk}-abc",
    }
    for name in names.values():
        (tmp_path / "jobs" / name / "env").mkdir(parents=True)
        (tmp_path / "jobs" / name / "env" / "extravars").write_text("secret: s3cret\n")
    assert orphans.remove_orphaned_dirs() == 2
    left = sorted(path.name for path in (tmp_path / "jobs").iterdir())
    assert left == sorted([names["live"], names["legacy_running"]])


def test_work_dir_must_be_this_users_and_not_writable_by_others(settings, tmp_path):
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    assert runner.work_dir() == tmp_path / "jobs"
    assert (tmp_path / "jobs").stat().st_mode & 0o777 == 0o700
    os.chmod(tmp_path / "jobs", 0o777)  # noqa: S103 - as if made by another user in /dev/shm
    with pytest.raises(OSError, match="others cannot write"):
        runner.work_dir()


def test_job_dirs_default_to_a_tmpfs_when_there_is_one(tmp_path):
    shm = tmp_path / "shm"
    shm.mkdir()
    expected = shm / f"portal-jobs-{os.geteuid()}"
    assert portal_settings.default_jobs_work_dir(shm) == expected
    assert (
        portal_settings.default_jobs_work_dir(tmp_path / "none") == portal_settings.VAR_DIR / "jobs"
    )


def test_run_tag_is_per_job_and_keyed(settings):
    first, second = Job(pk=7), Job(pk=8)
    tag = orphans.run_tag(first)
    assert tag.startswith("7-") and tag != orphans.run_tag(second)
    settings.SECRET_KEY = "another portal"
    assert orphans.run_tag(first) != tag


def _lost_job(nodes) -> Job:
    job = actions.launch(playbook="sleep.yml", nodes=nodes)
    stale = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=stale)
    return job


@pytest.mark.django_db(transaction=True)
def test_reaper_ends_a_lost_run_on_its_ssh_nodes(broker, settings, tmp_path):
    settings.PLAYBOOKS_DIR = tmp_path
    for name in ("sleep.yml", orphans.END_RUN_PLAYBOOK):
        source = Path(__file__).parent / "playbooks" / name
        if not source.exists():
            source = Path(portal_settings.BASE_DIR) / "playbooks" / name
        (tmp_path / name).write_text(source.read_text())
    remote = NodeFactory(name="remote-1", connection=Connection.SSH)
    local = NodeFactory(name="local-1", connection=Connection.LOCAL, credential=None)
    job = _lost_job([remote, local])
    assert actions.reap_lost() == [job.pk]
    ending = Job.objects.get(action=orphans.END_RUN_ACTION)
    assert ending.extra_vars == {"portal_job_run": orphans.run_tag(job)}
    assert list(ending.nodes.all()) == [remote] and ending.target == job
    assert ending.playbook == "end_lost_run.yml"


@pytest.mark.django_db(transaction=True)
def test_a_lost_local_run_needs_no_job_on_nodes(broker, local_node):
    _lost_job([local_node])
    actions.reap_lost()
    assert not Job.objects.filter(action=orphans.END_RUN_ACTION).exists()


@pytest.mark.django_db(transaction=True)
def test_reaper_goes_on_when_ending_what_was_left_fails(broker, local_node):
    remote = NodeFactory(name="remote-1", connection=Connection.SSH)
    job = _lost_job([local_node, remote])
    with (
        mock.patch("portal.jobs.orphans.remove_orphaned_dirs", side_effect=OSError("busy")),
        mock.patch("portal.jobs.actions.launch", side_effect=RuntimeError("db down")),
        mock.patch("portal.jobs.actions.finalize") as finalize,
    ):
        assert actions.reap_lost() == [job.pk]
    finalize.assert_called_once()


@pytest.mark.django_db(transaction=True)
def test_every_module_of_a_run_carries_its_tag(broker, local_node):
    """The tag the reaper looks for on a node is in each module's environment; the node keeps
    its own shell type (no ansible_shell_type override)."""
    from portal.jobs.models import JobEvent

    job = actions.launch(playbook="module_env.yml", nodes=[local_node])
    actions.execute(job.pk, job.signature, worker="test")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    result = JobEvent.objects.get(job=job, event="runner_on_ok")
    lines = result.event_data["res"]["stdout_lines"]
    assert f"{orphans.RUN_VAR}={orphans.run_tag(job)}" in lines
    assert not any(line.startswith("ansible_shell_type") for line in lines)
