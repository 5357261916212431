"""Admin: labs and sessions pages, "Assign to users…", retry / extend / end actions."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from portal.jobs.models import Job
from portal.labs import actions
from portal.labs.choices import SessionStatus as S
from portal.labs.models import LabSession
from portal.nodes.choices import NodePurpose
from tests.factories import NodeFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("broker")]

LABS = reverse("admin:labs_lab_changelist")
SESSIONS = reverse("admin:labs_labsession_changelist")


def jobs_of(session):
    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(LabSession), target_id=str(session.pk)
    ).order_by("id")


def session_in(lab, status, user=None, **fields):
    session, _ = actions.do_assign(lab, user or UserFactory())
    LabSession.objects.filter(pk=session.pk).update(status=status, **fields)
    session.refresh_from_db()
    return session


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- labs ---------------------------------------------------------------------------------


def test_lab_changelist_shows_live_sessions(admin_client, lab):
    actions.do_assign(lab, UserFactory())
    session_in(lab, S.EXPIRED)
    page = admin_client.get(LABS)
    assert page.status_code == 200
    html = page.content.decode()
    assert "intro" in html and "lab-local" in html
    assert re.search(r'class="field-live_sessions">1<', html)
    assert admin_client.get(LABS, {"q": "intro", "enabled__exact": "1"}).status_code == 200


def test_lab_add_and_change_pages_offer_only_lab_servers(admin_client, lab):
    NodeFactory(name="ws-1", purpose=NodePurpose.WORKSPACE_HOST)
    for url in (reverse("admin:labs_lab_add"), reverse("admin:labs_lab_change", args=[lab.pk])):
        page = admin_client.get(url)
        assert page.status_code == 200
        choices = [str(c[1]) for c in page.context["adminform"].form.fields["server"].choices]
        assert "lab-local" in choices and "ws-1" not in choices


def test_assign_intermediate_page_shows_the_form(admin_client, lab):
    UserFactory(username="alice")
    page = admin_client.post(LABS, {"action": "assign_to_users", "_selected_action": [lab.pk]})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Assign labs to users" in html and 'name="duration_minutes"' in html
    assert 'name="apply"' in html and "alice" in html
    assert not LabSession.objects.exists()


def test_assign_to_users_and_a_group(admin_client, lab):
    alice, bob, carol = (UserFactory(username=n) for n in ("alice", "bob", "carol"))
    group = Group.objects.create(name="class-1")
    group.user_set.add(bob, carol)
    page = admin_client.post(
        LABS,
        {
            "action": "assign_to_users",
            "_selected_action": [lab.pk],
            "apply": "1",
            "users": [alice.pk, bob.pk],
            "group": group.pk,
            "duration_minutes": "45",
        },
    )
    assert page.status_code == 200
    sessions = LabSession.objects.order_by("user__username")
    assert [s.user.username for s in sessions] == ["alice", "bob", "carol"]
    html = page.content.decode()
    for session in sessions:
        assert session.access_expiry - session.access_start == timedelta(minutes=45)
        job = jobs_of(session).get()
        assert job.playbook == "lab_provision.yml" and job.action == "labs.provision"
        assert job.extra_vars["lab_session_username"] == session.user.username
        assert session.namespace in html
    tokens = re.findall(r"<code>([\w-]{30,})</code>", html)
    assert sorted(hashlib.sha256(t.encode()).hexdigest() for t in tokens) == sorted(
        s.token_hash for s in sessions
    )
    assert "3 session(s) assigned, 0 refused." in messages_of(page)


def test_assign_reports_refused_users(admin_client, lab):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    actions.do_assign(lab, alice)
    page = admin_client.post(
        LABS,
        {
            "action": "assign_to_users",
            "_selected_action": [lab.pk],
            "apply": "1",
            "users": [alice.pk, bob.pk],
        },
    )
    assert page.status_code == 200
    assert "already has a provisioning session" in page.content.decode()
    assert "1 session(s) assigned, 1 refused." in messages_of(page)
    assert LabSession.objects.filter(user=bob).exists()
    assert LabSession.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize("data", [{}, {"duration_minutes": "0"}, {"users": ["999999"]}])
def test_assign_form_errors_show_the_form_again(admin_client, lab, data):
    page = admin_client.post(
        LABS, {"action": "assign_to_users", "_selected_action": [lab.pk], "apply": "1", **data}
    )
    assert page.status_code == 200
    assert page.context["form"].errors
    assert not LabSession.objects.exists()


# --- sessions -----------------------------------------------------------------------------


def test_session_changelist_with_filters_and_search(admin_client, lab):
    waiting = session_in(
        lab,
        S.REQUESTED,
        waiting_for_server=True,
        last_error="waiting for server lab-local: unreachable",
    )
    session_in(lab, S.FAILED, last_error="provision script exited 3")
    page = admin_client.get(SESSIONS)
    assert page.status_code == 200
    html = page.content.decode()
    assert "(waiting for server)" in html and "provision script exited 3" in html
    for params in (
        {"status__exact": "failed"},
        {"waiting_for_server__exact": "1"},
        {"lab__id__exact": lab.pk},
        {"q": waiting.namespace},
        {"q": waiting.user.username},
    ):
        assert admin_client.get(SESSIONS, params).status_code == 200
    result = admin_client.get(SESSIONS, {"waiting_for_server__exact": "1"})
    assert list(result.context["cl"].result_list) == [waiting]
    result = admin_client.get(SESSIONS, {"q": waiting.namespace})
    assert list(result.context["cl"].result_list) == [waiting]


def test_session_detail_is_read_only_with_output_and_jobs(admin_client, lab):
    session = session_in(lab, S.FAILED, last_rc=7, last_output="no capacity left <b>x</b>")
    url = reverse("admin:labs_labsession_change", args=[session.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "no capacity left &lt;b&gt;x&lt;/b&gt;" in html and ">7<" in html
    job = jobs_of(session).get()
    assert reverse("admin:jobs_job_change", args=[job.pk]) in html
    assert 'name="status"' not in html and 'name="access_expiry"' not in html
    assert admin_client.post(url, {"status": "active"}).status_code == 403
    session.refresh_from_db()
    assert session.status == S.FAILED
    assert admin_client.get(reverse("admin:labs_labsession_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:labs_labsession_delete", args=[session.pk])).status_code
        == 403
    )


def _act(client, action, *sessions):
    return client.post(
        SESSIONS, {"action": action, "_selected_action": [s.pk for s in sessions]}, follow=True
    )


def test_retry_action(admin_client, lab):
    failed = session_in(lab, S.FAILED)
    active = session_in(lab, S.ACTIVE)
    page = _act(admin_client, "retry_sessions", failed, active)
    notes = messages_of(page)
    assert f"Session {failed.pk}: provisioning" in " ".join(notes)
    assert any(f"Session {active.pk}: Only a failed session" in n for n in notes)
    failed.refresh_from_db()
    assert failed.status == S.PROVISIONING and jobs_of(failed).count() == 2
    assert jobs_of(active).count() == 1


def test_extend_action(admin_client, lab):
    active = session_in(lab, S.ACTIVE)
    expired = session_in(lab, S.EXPIRED)
    page = _act(admin_client, "extend_sessions", active, expired)
    notes = messages_of(page)
    assert any("cannot be extended" in n for n in notes)
    old = active.access_expiry
    active.refresh_from_db()
    assert active.access_expiry == old + lab.default_duration


def test_end_action(admin_client, lab):
    active = session_in(lab, S.ACTIVE)
    Job.objects.update(status="successful")
    expired = session_in(lab, S.EXPIRED)
    page = _act(admin_client, "end_sessions", active, expired)
    notes = messages_of(page)
    assert f"Session {active.pk}: expiring" in " ".join(notes)
    assert any("already expired" in n for n in notes)
    active.refresh_from_db()
    assert active.status == S.EXPIRING
    assert jobs_of(active).last().playbook == "lab_cleanup.yml"


# --- the session's page: no submit row, the actions as buttons, coloured status -----------


def _button(session, name):
    return reverse("admin:labs_labsession_detail_action", args=[session.pk, name])


def _page(client, session) -> str:
    page = client.get(reverse("admin:labs_labsession_change", args=[session.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_session_page_has_no_submit_row_and_a_coloured_status(admin_client, lab):
    html = _page(admin_client, session_in(lab, S.FAILED))
    assert 'class="submit-row"' not in html and 'name="_save"' not in html
    assert 'class="status-badge status-failed">Failed<' in html
    assert " style=" not in html.split('id="content"')[1]  # CSP: colours from portal/admin.css
    listing = admin_client.get(SESSIONS).content.decode()
    assert 'class="status-badge status-failed"' in listing


def test_session_page_offers_the_buttons_its_status_allows(admin_client, lab):
    failed, active = session_in(lab, S.FAILED), session_in(lab, S.ACTIVE)
    html = _page(admin_client, failed)
    assert _button(failed, "retry_sessions") in html
    assert _button(failed, "extend_sessions") not in html
    html = _page(admin_client, active)
    assert _button(active, "retry_sessions") not in html
    assert _button(active, "extend_sessions") in html and _button(active, "end_sessions") in html
    assert 'name="csrfmiddlewaretoken"' in html
    expired = session_in(lab, S.EXPIRED)
    assert "detail-action" not in _page(admin_client, expired)


def test_retry_button_retries_with_a_new_job(admin_client, lab):
    failed = session_in(lab, S.FAILED)
    page = admin_client.post(_button(failed, "retry_sessions"), follow=True)
    assert page.redirect_chain[-1][0] == reverse("admin:labs_labsession_change", args=[failed.pk])
    assert f"Session {failed.pk}: provisioning" in " ".join(messages_of(page))
    failed.refresh_from_db()
    assert failed.status == S.PROVISIONING
    assert [job.playbook for job in jobs_of(failed)] == ["lab_provision.yml"] * 2


def test_extend_button_extends_by_the_default_duration(admin_client, lab):
    active = session_in(lab, S.ACTIVE)
    old = active.access_expiry
    admin_client.post(_button(active, "extend_sessions"))
    active.refresh_from_db()
    assert active.access_expiry == old + lab.default_duration


def test_end_button_ends_with_a_cleanup_job(admin_client, lab):
    active = session_in(lab, S.ACTIVE)
    Job.objects.update(status="successful")
    admin_client.post(_button(active, "end_sessions"))
    active.refresh_from_db()
    assert active.status == S.EXPIRING
    assert jobs_of(active).last().playbook == "lab_cleanup.yml"


def test_a_refused_button_says_why_and_changes_nothing(admin_client, lab):
    expired = session_in(lab, S.EXPIRED)
    page = admin_client.post(_button(expired, "extend_sessions"), follow=True)
    assert any("cannot be extended" in note for note in messages_of(page))
    assert LabSession.objects.get(pk=expired.pk).status == S.EXPIRED


def test_buttons_need_the_change_permission(client, lab):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_labsession"))
    client.force_login(viewer)
    failed = session_in(lab, S.FAILED)
    assert "detail-action" not in _page(client, failed)
    assert client.post(_button(failed, "retry_sessions")).status_code == 403
    assert LabSession.objects.get(pk=failed.pk).status == S.FAILED


def test_admin_home_counts_active_lab_sessions(admin_client, lab):
    session_in(lab, S.ACTIVE)
    session_in(lab, S.ACTIVE)
    session_in(lab, S.FAILED)
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="number-labs"><b>2</b>' in html


def test_session_jobs_show_coloured_statuses_and_seconds(admin_client, lab):
    session = session_in(lab, S.PROVISIONING)
    job = jobs_of(session).get()
    html = _page(admin_client, session)
    assert 'class="status-badge status-pending">Pending<' in html
    from django.utils import timezone

    assert timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M:%S") in html
