"""manage.py lab: assign, retry, expire-now, list; every error a one-line CommandError."""

import hashlib
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command

from portal.jobs.models import Job
from portal.labs import actions
from portal.labs.choices import SessionStatus as S
from portal.labs.models import LabSession
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("broker")]


def lab_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("lab", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def jobs_of(session):
    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(LabSession), target_id=str(session.pk)
    ).order_by("id")


def session_in(lab, status, user=None):
    session, _ = actions.do_assign(lab, user or UserFactory())
    LabSession.objects.filter(pk=session.pk).update(status=status)
    session.refresh_from_db()
    return session


def test_assign_prints_one_line_per_user(lab):
    UserFactory(username="alice")
    UserFactory(username="bob")
    out, _ = lab_command("assign", "intro", "alice", "bob", "--minutes", "30")
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[0] for line in lines] == ["alice", "bob"]
    for username, session_id, namespace, status, token in lines:
        session = LabSession.objects.get(pk=int(session_id))
        assert session.user.username == username and session.namespace == namespace
        assert status == S.PROVISIONING == session.status
        assert hashlib.sha256(token.encode()).hexdigest() == session.token_hash
        assert session.access_expiry - session.access_start == timedelta(minutes=30)
        job = jobs_of(session).get()
        assert job.playbook == "lab_provision.yml" and job.action == "labs.provision"
        assert job.extra_vars == {
            "lab_session_script": "/opt/labs/intro/provision.sh",
            "lab_session_username": username,
            "lab_session_namespace": namespace,
        }


def test_assign_reports_conflicts_and_fails(lab):
    alice = UserFactory(username="alice")
    UserFactory(username="bob")
    actions.do_assign(lab, alice)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=r"1 of 2 user\(s\) not assigned"):
        call_command("lab", "assign", "intro", "alice", "bob", stdout=out, stderr=err)
    assert out.getvalue().startswith("bob\t")
    assert err.getvalue().startswith("alice\tuser: ") and "already has" in err.getvalue()


def test_assign_uses_the_default_duration(lab):
    UserFactory(username="alice")
    lab_command("assign", "intro", "alice")
    session = LabSession.objects.get()
    assert session.access_expiry - session.access_start == lab.default_duration


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("assign", "nope", "alice"), "unknown lab 'nope'"),
        (("assign", "intro", "alice", "ghost"), "unknown or inactive user(s): 'ghost'"),
        (("assign", "intro", "alice", "--minutes", "0"), "--minutes 0: must be between"),
        (("assign", "intro", "alice", "--minutes", "ten"), "not a whole number"),
        (("retry", "999999"), "unknown session 999999"),
        (("expire-now", "999999"), "unknown session 999999"),
        (("retry", "abc"), "invalid int value"),
        (("list", "--status", "bogus"), "invalid choice"),
        (("list", "--lab", "nope"), "unknown lab 'nope'"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_errors_are_command_errors(lab, args, message):
    UserFactory(username="alice")
    with pytest.raises(CommandError) as error:
        lab_command(*args)
    assert message in str(error.value)
    assert not LabSession.objects.exists()


def test_disabled_lab_is_refused(lab):
    UserFactory(username="alice")
    lab.enabled = False
    lab.save()
    with pytest.raises(CommandError, match="lab: Lab intro is disabled"):
        lab_command("assign", "intro", "alice")


def test_retry(lab):
    failed = session_in(lab, S.FAILED)
    out, _ = lab_command("retry", str(failed.pk))
    assert out.strip() == f"session {failed.pk}: {S.PROVISIONING}"
    assert jobs_of(failed).count() == 2
    with pytest.raises(CommandError, match="status: Only a failed session can be retried"):
        lab_command("retry", str(failed.pk))


def test_expire_now(lab):
    active = session_in(lab, S.ACTIVE)
    Job.objects.update(status="successful")
    out, _ = lab_command("expire-now", str(active.pk))
    assert out.strip() == f"session {active.pk}: {S.EXPIRING}"
    assert jobs_of(active).last().playbook == "lab_cleanup.yml"
    with pytest.raises(CommandError, match="already expiring"):
        lab_command("expire-now", str(active.pk))


def test_list(lab):
    active = session_in(lab, S.ACTIVE, user=UserFactory(username="alice"))
    failed = session_in(lab, S.FAILED, user=UserFactory(username="bob"))
    out, _ = lab_command("list")
    header, *rows = out.splitlines()
    assert header.split("\t")[:5] == ["id", "lab", "user", "namespace", "status"]
    assert {row.split("\t")[0] for row in rows} == {str(active.pk), str(failed.pk)}
    out, _ = lab_command("list", "--status", "failed")
    [row] = out.splitlines()[1:]
    assert row.split("\t")[:5] == [str(failed.pk), "intro", "bob", failed.namespace, "failed"]
    assert row.split("\t")[5].startswith("1h") or row.split("\t")[5].startswith("2h")


def test_from_the_shell_an_error_is_one_line_and_a_nonzero_exit():
    """Run as operators do: no traceback, a clear message, exit status 1."""
    manage = Path(settings.BASE_DIR) / "manage.py"
    result = subprocess.run(  # fails while parsing arguments: no database is touched
        [sys.executable, str(manage), "lab", "retry", "not-a-number"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "invalid int value" in result.stderr
