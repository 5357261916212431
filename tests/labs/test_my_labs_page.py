from datetime import timedelta

import pytest
from django.utils import timezone

from portal.labs.choices import SessionStatus
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import Connection, NodePurpose
from tests.factories import NodeFactory, UserFactory

pytestmark = pytest.mark.django_db


def _session(user, status, hours=2, name="Intro to k8s"):
    server = NodeFactory(
        connection=Connection.LOCAL, credential=None, purpose=NodePurpose.LAB_SERVER
    )
    lab = Lab.objects.create(
        name=name,
        server=server,
        provision_script_path="/p.sh",
        cleanup_script_path="/c.sh",
        description="Pods and services",
    )
    return LabSession.objects.create(
        user=user,
        lab=lab,
        namespace=f"user-{user.pk}-{status[:4]}",
        status=status,
        access_expiry=timezone.now() + timedelta(hours=hours),
        token_hash="x",
    )


def test_login_required(client):
    response = client.get("/labs/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_user_sees_own_active_labs_with_time_left(client):
    user = UserFactory()
    _session(user, SessionStatus.ACTIVE, hours=2)
    _session(user, SessionStatus.EXPIRED, name="Old lab")
    _session(UserFactory(), SessionStatus.ACTIVE, name="Someone else's lab")
    client.force_login(user)
    page = client.get("/labs/").content.decode()
    assert "Intro to k8s" in page and "Pods and services" in page
    assert "Time left:" in page and ("1h 59m" in page or "2h 00m" in page)
    assert "Old lab" not in page and "Someone else" not in page


def test_waiting_for_server_is_shown(client):
    user = UserFactory()
    session = _session(user, SessionStatus.REQUESTED)
    LabSession.objects.filter(pk=session.pk).update(waiting_for_server=True)
    client.force_login(user)
    assert "waiting for the lab server" in client.get("/labs/").content.decode()


def test_login_page_logs_in(client):
    UserFactory(username="carol")
    response = client.post("/accounts/login/", {"username": "carol", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response["Location"] == "/workspaces/"


def test_an_active_lab_shows_how_to_get_in_escaped(client):
    user = UserFactory(username="dana")
    session = _session(user, SessionStatus.ACTIVE)
    Lab.objects.filter(pk=session.lab_id).update(
        access_instructions="ssh {username}@lab -- kubectl -n {namespace}\n<script>x</script>"
    )
    client.force_login(user)
    page = client.get("/labs/").content.decode()
    assert 'data-testid="lab-instructions"' in page
    assert f"ssh dana@lab -- kubectl -n {session.namespace}" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    assert 'data-testid="lab-extend"' not in page  # the lab allows no extension


def test_instructions_are_not_shown_before_the_session_is_active(client):
    user = UserFactory()
    session = _session(user, SessionStatus.REQUESTED)
    Lab.objects.filter(pk=session.lab_id).update(access_instructions="ssh {username}@lab")
    client.force_login(user)
    assert 'data-testid="lab-instructions"' not in client.get("/labs/").content.decode()


def test_the_extend_button_is_offered_once(client):
    from portal.labs import actions

    user = UserFactory()
    session = _session(user, SessionStatus.ACTIVE)
    Lab.objects.filter(pk=session.lab_id).update(user_extend_minutes=45)
    client.force_login(user)
    page = client.get("/labs/").content.decode()
    assert 'data-testid="lab-extend"' in page and "Extend by 45 minutes" in page
    assert f'data-url="/api/lab-sessions/{session.pk}/extend/"' in page
    session.refresh_from_db()
    actions.do_user_extend(session, user)
    page = client.get("/labs/").content.decode()
    assert 'data-testid="lab-extend"' not in page and 'data-testid="lab-extended"' in page
