"""The runner on real ansible-playbook runs (local connection): events, outcomes, safety."""

import os
import secrets
import subprocess
import threading

import pytest

from portal.jobs import actions, orphans
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from tests.helpers import stubbed_broker
from tests.jobs.conftest import FINISHED
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def run_now(**launch_kwargs) -> Job:
    with stubbed_broker():
        job = actions.launch(**launch_kwargs)
    actions.execute(job.pk, job.signature, worker="test-worker")
    job.refresh_from_db()
    return job


def test_successful_run_stores_every_event(local_node):
    job = run_now(playbook="many.yml", nodes=[local_node], extra_vars={"steps": 30})
    assert job.status == JobStatus.SUCCESSFUL and job.rc == 0
    counters = list(job.events.values_list("counter", flat=True))
    assert counters == list(range(1, len(counters) + 1))  # contiguous, none missing
    assert job.event_count == len(counters) > 30
    assert job.host_summary["local-1"]["ok"] == 1
    assert job.events.filter(event="playbook_on_stats").exists()
    assert job.started_at <= job.finished_at


def test_failure_records_rc_and_failed_host(local_node):
    job = run_now(playbook="fail.yml", nodes=[local_node], action="tests.recorded")
    assert job.status == JobStatus.FAILED and job.rc == 2
    assert "rc 2" in job.reason
    assert job.host_summary["local-1"]["failures"] == 1
    failed = job.events.get(event="runner_on_failed")
    assert failed.failed and failed.host == "local-1" and "failing on purpose" in failed.stdout
    assert [(job.pk, JobStatus.FAILED)] == FINISHED  # result handler ran once


def test_timeout_ends_the_run(local_node):
    seconds = 900 + secrets.randbelow(9000)  # a `sleep N` no other run on this machine has
    with stubbed_broker():
        job = actions.launch(
            playbook="sleep.yml", nodes=[local_node], extra_vars={"seconds": seconds}, timeout=15
        )
    worker = threading.Thread(target=actions.execute, args=(job.pk, job.signature, "w"))
    worker.start()
    wait_for(lambda: _sleepers(f"sleep {seconds}"), message="the playbook to start sleeping")
    worker.join(timeout=120)
    job.refresh_from_db()
    assert job.status == JobStatus.TIMEOUT
    assert "after the 15s job timeout" in job.reason
    # Ended mid-task by the timeout, not run to its end: the task started and never reported,
    # the play never finished, and the task's process is gone.
    assert job.events.filter(event="playbook_on_task_start", task="Sleep for a while").exists()
    assert not job.events.filter(
        task="Sleep for a while", event__in=["runner_on_ok", "runner_on_failed"]
    ).exists()
    assert not job.events.filter(event="playbook_on_stats").exists()
    assert not _sleepers(f"sleep {seconds}")


def test_cancel_kills_the_process_group(local_node, settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.2
    with stubbed_broker():
        job = actions.launch(playbook="sleep.yml", nodes=[local_node], extra_vars={"seconds": 61})
    worker = threading.Thread(target=actions.execute, args=(job.pk, job.signature, "w"))
    worker.start()
    wait_for(lambda: _sleepers("sleep 61"), message="the playbook to start sleeping")
    actions.cancel(Job.objects.get(pk=job.pk))
    worker.join(timeout=30)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert not _sleepers("sleep 61")


def test_unsafe_payload_stays_text(local_node, tmp_path):
    payload = "{{ lookup('pipe', 'id') }}"
    out = tmp_path / "out.txt"
    job = run_now(
        playbook="echo.yml",
        nodes=[local_node],
        extra_vars={"message": payload, "out_file": str(out)},
    )
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    assert out.read_text() == payload
    stdout = "".join(job.events.values_list("stdout", flat=True))
    assert "uid=" not in stdout and "message={{ lookup('pipe', 'id') }}" in stdout


def test_secret_never_stored_or_visible_in_ps(local_node, tmp_path):
    secret = "s3cr3t-Value-4242"
    out = tmp_path / "secret.txt"
    with stubbed_broker():
        job = actions.launch(
            playbook="secret.yml",
            action="tests.recorded",
            nodes=[local_node],
            extra_vars={"api_password": secret, "out_file": str(out), "sleep_seconds": 10},
        )
    worker = threading.Thread(target=actions.execute, args=(job.pk, job.signature, "w"))
    worker.start()
    wait_for(lambda: _sleepers("sleep 10"), message="the playbook to reach the sleep")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    worker.join(timeout=60)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    assert out.read_text() == secret  # the secret did reach the task
    assert secret not in ps
    stored = [str(v) for v in JobEvent.objects.filter(job=job).values_list("stdout", "event_data")]
    assert stored and not any(secret in row for row in stored)
    assert any("pw=********" in row for row in stored)  # a careless debug is masked
    from django.db import connection

    with connection.cursor() as cursor:  # raw row: the stored form, not the decrypted one
        cursor.execute("SELECT * FROM jobs_job WHERE id = %s", [job.pk])
        assert secret not in str(cursor.fetchone())


def test_the_workers_settings_never_reach_the_run(local_node, settings, monkeypatch):
    """ansible-runner seeds ansible-playbook's environment with all of the worker's and
    writes it to the run's command file: only the allow-list and the run's own get there."""
    import base64
    import json

    monkeypatch.setenv("SECRET_KEY", "worker-secret-key-4242")
    monkeypatch.setenv("DATABASE_URL", "postgres://portal:db-pass-4242@db/portal")
    monkeypatch.setenv("OPERATOR_PASSED_VAR", "passed-on")
    monkeypatch.setenv("LC_TIME", "C.UTF-8")
    settings.CHILD_ENV_PASSTHROUGH = {"OPERATOR_PASSED_VAR"}
    job = run_now(playbook="run_environment.yml", nodes=[local_node])
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    module_env, command_file = (
        e.event_data["res"] for e in job.events.filter(event="runner_on_ok").order_by("counter")
    )
    names = {line.split("=", 1)[0] for line in module_env["stdout_lines"]}
    written = json.loads(base64.b64decode(command_file["content"]))["env"]
    for seen in (names, set(written)):
        assert {"PATH", "HOME", "LC_TIME", "OPERATOR_PASSED_VAR", orphans.RUN_VAR} <= seen
        assert not seen & {"SECRET_KEY", "DATABASE_URL"}
    stored = str(list(job.events.values_list("stdout", "event_data")))
    assert "4242" not in stored


def test_facts_stay_in_memory_for_the_run(local_node):
    """Facts gathered in one play serve the next, and none is written to disk (ansible-runner
    would cache them in JSON files in the run's artifacts)."""
    job = run_now(playbook="facts_in_memory.yml", nodes=[local_node])
    assert job.status == JobStatus.SUCCESSFUL, job.reason
    listing = job.events.get(event="runner_on_ok", task="List the run's data dir")
    paths = [entry["path"] for entry in listing.event_data["res"]["files"]]
    assert any(path.endswith("/inventory/hosts.yml") for path in paths)  # it did look
    cached = [path for path in paths if path.rsplit("/", 1)[-1] in ("fact_cache", local_node.name)]
    assert not cached


@pytest.mark.parametrize("share_seconds", [300, 0])
def test_private_data_dir_and_control_dir_are_removed(
    local_node, settings, tmp_path, share_seconds
):
    settings.JOBS_CONTROL_DIR = str(tmp_path / "control")
    settings.JOB_SSH_SHARE_SECONDS = share_seconds
    (tmp_path / "control").mkdir()
    job = run_now(playbook="echo.yml", nodes=[local_node])
    assert job.status == JobStatus.SUCCESSFUL
    assert list(settings.JOBS_WORK_DIR.iterdir()) == []
    # only the shared masters' directory stays (empty: a local node needs no SSH)
    left = list((tmp_path / "control").iterdir())
    assert left == ([tmp_path / "control" / f"portal-ssh-{os.geteuid()}"] if share_seconds else [])
    assert all(not any(path.iterdir()) for path in left)


def test_unreachable_host_is_retried_with_backoff(db, settings):
    from tests.factories import NodeFactory

    node = NodeFactory(name="ghost", address="127.0.0.1", ssh_port=1)  # nothing listens
    with stubbed_broker():
        job = actions.launch(playbook="ping.yml", action="tests.retried", nodes=[node])
        actions.execute(job.pk, job.signature, worker="w")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.host_summary["ghost"]["unreachable"] == 1
    retry = Job.objects.get(retry_of=job)
    assert retry.attempt == 2 and retry.limit == "ghost" and retry.not_before > job.finished_at
    assert FINISHED == []  # the owner hears only the final outcome


def _sleepers(pattern: str) -> bool:
    ps = subprocess.run(["pgrep", "-fx", pattern], capture_output=True, text=True)
    return bool(ps.stdout.strip())


def test_password_credential_reaches_inventory_as_unsafe_text(db, tmp_path, settings):
    from portal.jobs.runner import write_inventory
    from tests.factories import CredentialFactory, NodeFactory

    credential = CredentialFactory(kind="password", secret="{{ lookup('pipe','id') }}")
    node = NodeFactory(name="pw-node", credential=credential)
    with stubbed_broker():
        job = actions.launch(playbook="ping.yml", nodes=[node])
    path = write_inventory(job, tmp_path)
    text = path.read_text()
    assert "ansible_password: !unsafe '{{ lookup(''pipe'',''id'') }}'" in text
    assert path.stat().st_mode & 0o777 == 0o600
