"""Lab sessions through real job runs (local lab server): ACTIVE, FAILED, retries, expiry."""

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from portal.jobs import actions as jobs
from portal.jobs.models import Job
from portal.labs import actions
from portal.labs.choices import SessionStatus as S
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import Connection, NodePurpose
from tests.factories import NodeFactory, UserFactory
from tests.helpers import run_due_jobs, stubbed_broker

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(autouse=True)
def product_playbooks(settings, tmp_path):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.LAB_RETRY_BASE_SECONDS = 0.5
    settings.LAB_RETRY_MAX_SECONDS = 1


@pytest.fixture
def scripts(tmp_path) -> Path:
    """This test's copy of the lab scripts: ok.sh records its arguments in args/ beside it."""
    return Path(shutil.copytree(SCRIPTS, tmp_path / "scripts"))


def make_lab(scripts: Path, script="ok.sh", server=None, **fields) -> Lab:
    server = server or NodeFactory(
        name="lab-local",
        connection=Connection.LOCAL,
        credential=None,
        purpose=NodePurpose.LAB_SERVER,
    )
    return Lab.objects.create(
        name=f"lab-{script}",
        server=server,
        provision_script_path=str(scripts / script),
        cleanup_script_path=str(scripts / "cleanup.sh"),
        **fields,
    )


def test_assign_runs_the_script_with_separate_arguments_and_becomes_active(scripts, broker):
    user = UserFactory(username="alice.o+x@lab-1")
    session, token = actions.do_assign(make_lab(scripts), user)
    assert session.status == S.PROVISIONING and len(token) > 30 and token not in session.token_hash
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.ACTIVE and session.provisioned and session.last_rc == 0
    assert "ready: alice.o+x@lab-1" in session.last_output
    assert (scripts / "args" / f"{session.namespace}.args").read_text().splitlines() == [
        "alice.o+x@lab-1",
        session.namespace,
    ]


def test_failing_script_is_failed_with_its_output_and_rc(scripts, broker):
    session, _ = actions.do_assign(make_lab(scripts, "fail.sh"), UserFactory())
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.FAILED and session.last_rc == 7
    assert "no capacity left" in session.last_output and "exited 7" in session.last_error
    assert Job.objects.filter(action="labs.provision").count() == 1  # no retry loop


def test_missing_script_fails_with_a_clear_reason(scripts, broker):
    session, _ = actions.do_assign(make_lab(scripts, "does-not-exist.sh"), UserFactory())
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.FAILED and "missing" in session.last_error


def test_unreachable_server_waits_and_retries_with_backoff(scripts, broker):
    server = NodeFactory(
        name="lab-down", address="127.0.0.1", ssh_port=1, purpose=NodePurpose.LAB_SERVER
    )
    session, _ = actions.do_assign(make_lab(scripts, server=server), UserFactory())
    run_due_jobs(max_rounds=1)
    session.refresh_from_db()
    assert session.status == S.REQUESTED and session.waiting_for_server
    assert "waiting for server lab-down" in session.last_error and session.next_retry_at
    retry = Job.objects.get(retry_of__isnull=False)
    assert retry.attempt == 2 and retry.not_before == session.next_retry_at


def test_a_provision_retry_never_brings_back_a_session_ended_meanwhile(scripts, broker):
    server = NodeFactory(
        name="lab-down", address="127.0.0.1", ssh_port=1, purpose=NodePurpose.LAB_SERVER
    )
    session, _ = actions.do_assign(make_lab(scripts, server=server), UserFactory())
    provision = Job.objects.get(action="labs.provision")
    LabSession.objects.filter(pk=session.pk).update(status=S.EXPIRING)  # ended while it ran
    actions.note_waiting_for_server(provision, provision)
    session.refresh_from_db()
    assert session.status == S.EXPIRING and not session.waiting_for_server


def test_retry_after_failure_and_extend_and_end(scripts, broker):
    session, _ = actions.do_assign(make_lab(scripts, "fail.sh"), UserFactory())
    run_due_jobs()
    session.refresh_from_db()
    session.lab.provision_script_path = str(scripts / "ok.sh")
    session.lab.save()
    actions.do_retry(session)
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.ACTIVE
    old_expiry = session.access_expiry
    actions.do_extend(session, duration=timedelta(hours=1))
    assert session.access_expiry == old_expiry + timedelta(hours=1)
    actions.do_end(session)
    assert session.status == S.EXPIRING
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.EXPIRED and not session.provisioned
    assert not (scripts / "args" / f"{session.namespace}.args").exists()  # cleanup ran


def test_tick_expires_sessions_past_their_expiry(scripts, broker):
    session, _ = actions.do_assign(make_lab(scripts), UserFactory())
    run_due_jobs()
    LabSession.objects.filter(pk=session.pk).update(
        access_start=timezone.now() - timedelta(hours=2),
        access_expiry=timezone.now() - timedelta(seconds=1),
    )
    assert actions.tick()["expired"] == 1
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.EXPIRED


def test_tick_starts_a_scheduled_session(scripts, broker):
    start = timezone.now() + timedelta(minutes=5)
    session, _ = actions.do_assign(make_lab(scripts), UserFactory(), start=start)
    assert session.status == S.REQUESTED and not Job.objects.exists()
    assert actions.tick(now=start + timedelta(seconds=1))["started"] == 1
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.ACTIVE


def test_lost_provisioning_job_is_provisioned_again(scripts, broker):
    session, _ = actions.do_assign(make_lab(scripts), UserFactory())
    job = Job.objects.get()
    job.claim("dead-worker")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    jobs.reap_lost()
    session.refresh_from_db()
    assert session.status == S.REQUESTED and "not provisioned yet" in session.last_error
    assert actions.tick()["started"] == 1
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.ACTIVE


def test_shell_metacharacters_in_a_username_are_refused_before_any_job(scripts):
    from portal.core.errors import PortalError

    with pytest.raises(PortalError) as error:
        actions.do_assign(make_lab(scripts), UserFactory(username="bob$(id);rm -rf /"))
    assert error.value.field == "user" and not Job.objects.exists()


def test_bad_input(scripts):
    from portal.core.errors import Conflict, PortalError

    lab = make_lab(scripts)
    user = UserFactory()
    with pytest.raises(PortalError) as error:
        actions.do_assign(
            lab, user, start=timezone.now(), expiry=timezone.now() - timedelta(hours=1)
        )
    assert error.value.field == "access_expiry"
    with stubbed_broker():
        actions.do_assign(lab, user)
        with pytest.raises(Conflict, match="already has"):
            actions.do_assign(lab, user)
        lab.allow_concurrent_sessions = True
        lab.save()
        actions.do_assign(lab, user)
    assert LabSession.objects.filter(user=user).count() == 2


def test_script_output_keeps_real_newlines_between_stdout_and_stderr(scripts, broker):
    # Issue #19: the output held a literal backslash-n ("\\ncannot provision alice\n").
    session, _ = actions.do_assign(make_lab(scripts, "fail.sh"), UserFactory())
    run_due_jobs()
    session.refresh_from_db()
    assert session.last_output == f"trying {session.namespace}\nno capacity left\n"
    assert "\\n" not in session.last_output
