"""The demo lab `seed_demo` makes (#19 Demo), started by the demo customer on My labs and
provisioned through the real job engine (ansible-runner, the lab_session role) on this
machine with connection=local; and self-service starting in general."""

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client

from portal.core.errors import PortalError
from portal.jobs.models import Job
from portal.labs import actions
from portal.labs.choices import SessionStatus as S
from portal.labs.models import Lab, LabSession
from tests.factories import UserFactory
from tests.helpers import run_due_jobs


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    return settings.VAR_DIR


def demo_client() -> tuple[Client, Lab]:
    import re

    out = StringIO()
    call_command("seed_demo", "--no-job", stdout=out)
    username, password = re.search(r"customer login (\S+) / (\S+)", out.getvalue()).groups()
    client = Client()
    assert (
        client.post("/accounts/login/", {"username": username, "password": password}).status_code
        == 302
    )
    return client, Lab.objects.get(name="Demo lab")


@pytest.mark.django_db(transaction=True)
def test_the_demo_customer_starts_the_demo_lab_and_it_provisions_for_real(var_dir, broker):
    client, lab = demo_client()
    page = client.get("/labs/").content.decode()
    assert "Labs you can start" in page and 'data-testid="lab-start"' in page

    response = client.post(f"/labs/{lab.pk}/start/")
    assert response.status_code == 302 and response.url == "/labs/"
    session = LabSession.objects.get()
    assert session.user.username == "demo" and session.status == S.PROVISIONING
    page = client.get("/labs/").content.decode()
    assert "being prepared" in page and 'data-testid="lab-start"' not in page  # one live

    run_due_jobs()  # a real ansible-runner job on this machine (connection=local)

    session.refresh_from_db()
    job = Job.objects.get(action=actions.PROVISION)
    assert job.status == "successful" and job.playbook == "lab_provision.yml"
    assert session.status == S.ACTIVE and session.last_rc == 0, session.last_error
    readme = var_dir.resolve() / "demo-lab" / "sessions" / session.namespace / "README"
    assert f"Demo lab session {session.namespace} of demo" in readme.read_text()
    assert f"lab ready: {readme.parent}" in session.last_output
    page = client.get("/labs/").content.decode()
    assert f"open\n  {readme}" in page  # the access instructions, filled in
    assert 'data-testid="lab-extend"' in page

    actions.do_end(session)
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.EXPIRED and not readme.parent.exists()
    # Nothing outside var/ was touched: only the session's directory came and went.
    assert sorted(p.name for p in (var_dir / "demo-lab").iterdir()) == [
        "cleanup.sh",
        "provision.sh",
        "sessions",
    ]


@pytest.mark.django_db
def test_only_self_service_labs_can_be_started_by_their_users(lab, broker):
    user = UserFactory()
    client = Client()
    client.force_login(user)
    assert 'data-testid="lab-start"' not in client.get("/labs/").content.decode()
    assert client.post(f"/labs/{lab.pk}/start/").status_code == 404
    with pytest.raises(PortalError) as refused:
        actions.do_start_own(lab, user)
    assert refused.value.code == "not_self_service"
    assert not LabSession.objects.exists()


@pytest.mark.django_db
def test_a_second_start_is_refused_with_the_reason_on_the_page(lab, broker):
    lab.self_service = True
    lab.default_duration = timedelta(minutes=90)
    lab.save()
    user = UserFactory()
    client = Client()
    client.force_login(user)
    page = client.get("/labs/").content.decode()
    assert "Start this lab" in page and "for 1 h 30 min" in page
    assert client.post(f"/labs/{lab.pk}/start/").status_code == 302
    session = LabSession.objects.get()
    assert session.access_expiry - session.access_start == timedelta(minutes=90)
    assert session.assigned_by == user

    second = client.post(f"/labs/{lab.pk}/start/")  # e.g. a second tab
    assert second.status_code == 409
    assert "already has a" in second.content.decode()
    assert LabSession.objects.count() == 1
    assert client.get(f"/labs/{lab.pk}/start/").status_code == 405


@pytest.mark.django_db
def test_a_disabled_server_hides_the_lab(lab, broker):
    lab.self_service = True
    lab.save()
    lab.server.enabled = False
    lab.server.save()
    client = Client()
    client.force_login(UserFactory())
    assert "Start this lab" not in client.get("/labs/").content.decode()
    response = client.post(f"/labs/{lab.pk}/start/")
    assert response.status_code == 409 and "is disabled" in response.content.decode()
    assert not LabSession.objects.exists()
