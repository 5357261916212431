"""manage.py runplaybook: records a Job exactly as the portal does, streams its output."""

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from portal.jobs import actions
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db(transaction=True)


def test_runs_and_records_a_job(local_node, capsys):
    call_command("runplaybook", "echo.yml", "-e", "message=hello", "--limit", "local-*")
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCESSFUL and job.action == "jobs.adhoc"
    assert job.extra_vars == {"message": "hello"} and job.limit == "local-*"
    out, err = capsys.readouterr()
    assert "message=hello" in out and "PLAY RECAP" in out
    assert f"job {job.pk} successful rc=0" in err


def test_a_job_run_here_is_never_published_to_the_workers(local_node):
    """A `make run` worker sharing the broker must not claim the job this command runs."""
    with stubbed_broker() as broker:
        call_command("runplaybook", "echo.yml", "-e", "message=alone")
    broker.publish.assert_not_called()
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCESSFUL and job.worker == "manage.py"


def test_queue_hands_the_job_to_the_workers(local_node):
    workers = []

    def run_it(task, args, **options):
        # A worker (its own thread, as it is its own process) that takes the message at
        # once: before the launch has written the row (jobs.actions._publish_then_insert).
        def work():
            try:
                actions.execute(*args, worker="test-worker")
            finally:
                connection.close()

        workers.append(threading.Thread(target=work))
        workers[-1].start()

    with stubbed_broker(side_effect=run_it) as broker:
        call_command("runplaybook", "echo.yml", "--queue")
    for worker in workers:
        worker.join(timeout=30)
    assert [name for name, _ in broker.published()] == ["jobs.run"]
    assert Job.objects.get().worker == "test-worker"


def test_failed_playbook_exits_non_zero(local_node):
    with pytest.raises(CommandError, match="failed rc=2") as error:
        call_command("runplaybook", "fail.yml")
    assert error.value.returncode == 2
    assert Job.objects.get().status == JobStatus.FAILED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.yml"], "playbook: Unknown playbook"),
        (["echo.yml", "--limit", "zzz"], "limit: The limit 'zzz' matches no enabled node"),
        (["echo.yml", "-e", "[1, 2]"], "use NAME=VALUE or a JSON object"),
        (["echo.yml", "-e", "{bad json"], "not valid JSON"),
    ],
)
def test_bad_input_is_a_clear_error_and_no_job(local_node, args, message):
    with pytest.raises(CommandError, match=message.replace("[", r"\[")):
        call_command("runplaybook", *args)
    assert not Job.objects.exists()


def test_json_extra_vars(local_node):
    call_command("runplaybook", "echo.yml", "-e", '{"message": "from json"}')
    assert Job.objects.get().extra_vars == {"message": "from json"}
