"""/api/labs/ and /api/lab-sessions/: rows and jobs created, statuses, isolation, 4xx bodies."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.labs import actions
from portal.labs.choices import SessionStatus as S
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import NodePurpose
from tests.factories import NodeFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("broker")]


def jobs_of(session):
    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(LabSession), target_id=str(session.pk)
    ).order_by("id")


def assign(client, lab, body):
    return client.post(f"/api/labs/{lab.pk}/assign/", body, format="json")


def error_fields(response):
    return [error["field"] for error in response.json()["errors"]]


def session_in(lab, status, user=None):
    session, _ = actions.do_assign(lab, user or UserFactory())
    LabSession.objects.filter(pk=session.pk).update(status=status)
    session.refresh_from_db()
    return session


# --- labs ---------------------------------------------------------------------------------


def _new_lab(server, **overrides):
    return {
        "name": "k8s-basics",
        "server": server.name,
        "provision_script_path": "/opt/labs/k8s/provision.sh",
        "cleanup_script_path": "/opt/labs/k8s/cleanup.sh",
        "default_duration_minutes": 90,
        **overrides,
    }


def test_admin_creates_a_lab(admin_api, lab_server):
    response = admin_api.post("/api/labs/", _new_lab(lab_server), format="json")
    assert response.status_code == 201, response.json()
    lab = Lab.objects.get(name="k8s-basics")
    assert lab.server == lab_server and lab.default_duration == timedelta(minutes=90)
    assert response.json()["default_duration_minutes"] == 90
    assert response.json()["live_sessions"] == 0


def test_server_must_be_a_lab_server(admin_api):
    workspace_host = NodeFactory(purpose=NodePurpose.WORKSPACE_HOST)
    response = admin_api.post("/api/labs/", _new_lab(workspace_host), format="json")
    assert response.status_code == 400
    assert error_fields(response) == ["server"]
    assert "not a lab server" in response.json()["message"]
    response = admin_api.post(
        "/api/labs/", {**_new_lab(workspace_host), "server": "nope"}, format="json"
    )
    assert response.status_code == 400 and error_fields(response) == ["server"]
    assert not Lab.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("provision_script_path", "relative/path.sh"),
        ("cleanup_script_path", "/opt/x.sh; rm -rf /"),
        ("default_duration_minutes", 0),
        ("name", ""),
    ],
)
def test_bad_lab_fields_are_400_naming_the_field(admin_api, lab_server, field, value):
    response = admin_api.post("/api/labs/", _new_lab(lab_server, **{field: value}), format="json")
    assert response.status_code == 400
    assert field in error_fields(response)


def test_admin_updates_and_deletes_a_lab(admin_api, lab, lab_server):
    response = admin_api.patch(f"/api/labs/{lab.pk}/", {"enabled": False}, format="json")
    assert response.status_code == 200, response.json()
    lab.refresh_from_db()
    assert not lab.enabled
    other = NodeFactory(purpose=NodePurpose.FLEET_HOST)
    response = admin_api.patch(f"/api/labs/{lab.pk}/", {"server": other.name}, format="json")
    assert response.status_code == 400 and error_fields(response) == ["server"]
    assert admin_api.delete(f"/api/labs/{lab.pk}/").status_code == 204
    assert not Lab.objects.exists()


def test_a_lab_with_sessions_cannot_be_deleted(admin_api, lab):
    actions.do_assign(lab, UserFactory())
    response = admin_api.delete(f"/api/labs/{lab.pk}/")
    assert response.status_code == 409
    assert Lab.objects.filter(pk=lab.pk).exists()


def test_labs_are_for_admins_only(user_api, api, lab, lab_server):
    client = user_api()
    assert client.get("/api/labs/").status_code == 403
    assert client.get(f"/api/labs/{lab.pk}/").status_code == 403
    assert client.post("/api/labs/", _new_lab(lab_server), format="json").status_code == 403
    assert assign(client, lab, {"users": ["x"]}).status_code == 403
    assert api.get("/api/labs/").status_code in (401, 403)


def test_lab_list_counts_live_sessions(admin_api, lab):
    actions.do_assign(lab, UserFactory())
    session_in(lab, S.EXPIRED)
    [row] = admin_api.get("/api/labs/").json()["results"]
    assert row["name"] == "intro" and row["live_sessions"] == 1 and row["server"] == "lab-local"


# --- assign -------------------------------------------------------------------------------


def test_assign_one_user_creates_the_session_and_the_provision_job(admin_api, admin_user, lab):
    alice = UserFactory(username="alice")
    response = assign(admin_api, lab, {"users": ["alice"], "duration_minutes": 30})
    assert response.status_code == 201, response.json()
    [row] = response.json()["results"]
    session = LabSession.objects.get()
    assert row["user"] == "alice" and row["session_id"] == session.pk and row["error"] is None
    assert row["namespace"] == session.namespace and row["status"] == S.PROVISIONING
    assert hashlib.sha256(row["token"].encode()).hexdigest() == session.token_hash
    assert session.user == alice and session.lab == lab and session.assigned_by == admin_user
    assert session.access_expiry - session.access_start == timedelta(minutes=30)
    [job] = jobs_of(session)
    assert job.playbook == "lab_provision.yml" and job.action == "labs.provision"
    assert job.target == session and list(job.nodes.all()) == [lab.server]
    assert job.requested_by == admin_user
    assert job.extra_vars == {
        "lab_session_script": "/opt/labs/intro/provision.sh",
        "lab_session_username": "alice",
        "lab_session_namespace": session.namespace,
    }


def test_assign_several_users_at_once(admin_api, lab):
    UserFactory(username="alice")
    UserFactory(username="bob")
    response = assign(admin_api, lab, {"users": ["alice", "bob", "alice"]})
    assert response.status_code == 201
    rows = response.json()["results"]
    assert [r["user"] for r in rows] == ["alice", "bob"]
    assert len({r["token"] for r in rows}) == 2
    assert len({r["namespace"] for r in rows}) == 2
    for session in LabSession.objects.all():
        assert session.access_expiry - session.access_start == lab.default_duration
        assert jobs_of(session).get().extra_vars["lab_session_username"] == session.user.username


def test_duplicate_live_session_is_409_for_that_user(admin_api, lab):
    UserFactory(username="alice")
    UserFactory(username="bob")
    assert assign(admin_api, lab, {"users": ["alice"]}).status_code == 201
    response = assign(admin_api, lab, {"users": ["alice"]})
    assert response.status_code == 409
    body = response.json()
    assert body["status"] == 409 and body["code"] == "session_exists"
    assert body["errors"][0]["field"] == "users" and "alice" in body["message"]
    assert body["results"][0]["error"]["status"] == 409
    assert body["results"][0]["token"] is None
    # Some users fail, others succeed: 201 with each user's outcome.
    response = assign(admin_api, lab, {"users": ["alice", "bob"]})
    assert response.status_code == 201
    alice, bob = response.json()["results"]
    assert alice["error"]["code"] == "session_exists" and alice["session_id"] is None
    assert bob["error"] is None and bob["status"] == S.PROVISIONING
    assert LabSession.objects.filter(user__username="alice").count() == 1
    assert Job.objects.count() == 2


def test_a_new_session_is_allowed_once_the_old_one_ended(admin_api, lab):
    alice = UserFactory(username="alice")
    session_in(lab, S.EXPIRED, user=alice)
    session_in(lab, S.FAILED, user=alice)
    assert assign(admin_api, lab, {"users": ["alice"]}).status_code == 201


def test_concurrent_sessions_when_the_lab_allows_them(admin_api, lab):
    lab.allow_concurrent_sessions = True
    lab.save()
    UserFactory(username="alice")
    assert assign(admin_api, lab, {"users": ["alice"]}).status_code == 201
    assert assign(admin_api, lab, {"users": ["alice"]}).status_code == 201
    assert LabSession.objects.filter(status__in=[S.PROVISIONING]).count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"access_start": "2030-01-02T10:00:00Z", "access_expiry": "2030-01-02T09:00:00Z"},
            "access_expiry",
        ),
        (
            {"access_start": "2030-01-02T10:00:00Z", "access_expiry": "2030-01-02T10:00:00Z"},
            "access_expiry",
        ),
        ({"access_expiry": "2020-01-01T00:00:00Z"}, "access_expiry"),
        ({"access_expiry": "not a date"}, "access_expiry"),
        ({"access_start": "9999-12-31T23:00:00Z"}, "access_start"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": "ten"}, "duration_minutes"),
        ({"duration_minutes": 10**12}, "duration_minutes"),
        ({"duration_minutes": 10, "access_expiry": "2030-01-02T09:00:00Z"}, "duration_minutes"),
    ],
)
def test_bad_windows_are_400_and_create_nothing(admin_api, lab, body, field):
    UserFactory(username="alice")
    response = assign(admin_api, lab, {"users": ["alice"], **body})
    assert response.status_code == 400, response.json()
    assert error_fields(response) == [field]
    assert not LabSession.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("users", [["alice", "ghost"], [], "alice", [["alice"]], None])
def test_unknown_or_malformed_users_are_400_naming_users(admin_api, lab, users):
    UserFactory(username="alice")
    response = assign(admin_api, lab, {"users": users})
    assert response.status_code == 400
    assert all(field.startswith("users") for field in error_fields(response))
    assert not LabSession.objects.exists()


def test_unknown_user_is_named_in_the_message(admin_api, lab):
    response = assign(admin_api, lab, {"users": ["ghost"]})
    assert response.status_code == 400 and "ghost" in response.json()["message"]


def test_inactive_user_is_refused(admin_api, lab):
    UserFactory(username="gone", is_active=False)
    assert assign(admin_api, lab, {"users": ["gone"]}).status_code == 400


def test_unknown_lab_is_404(admin_api):
    response = admin_api.post("/api/labs/999999/assign/", {"users": ["x"]}, format="json")
    assert response.status_code == 404


def test_disabled_lab_is_409(admin_api, lab):
    UserFactory(username="alice")
    lab.enabled = False
    lab.save()
    response = assign(admin_api, lab, {"users": ["alice"]})
    assert response.status_code == 409 and error_fields(response) == ["lab"]
    assert not LabSession.objects.exists()


def test_future_start_waits_for_the_tick(admin_api, lab):
    UserFactory(username="alice")
    start = timezone.now() + timedelta(days=1)
    response = assign(
        admin_api,
        lab,
        {
            "users": ["alice"],
            "access_start": start.isoformat(),
            "access_expiry": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 201
    session = LabSession.objects.get()
    assert session.status == S.REQUESTED and session.access_start == start
    assert not jobs_of(session).exists()


def test_a_username_reaches_the_job_as_a_plain_extra_var(admin_api, lab):
    name = "alice.o+x_y@lab-1"  # every character Django allows besides letters and digits
    UserFactory(username=name)
    response = assign(admin_api, lab, {"users": [name]})
    assert response.status_code == 201, response.json()
    job = jobs_of(LabSession.objects.get()).get()
    assert job.extra_vars["lab_session_username"] == name
    assert job.limit == ""  # nothing user-supplied in the host pattern


@pytest.mark.parametrize(
    "name", ["bob$(id)", "bob;rm -rf /", "`touch /tmp/x`", "{{ lookup('pipe','id') }}", "bob\nroot"]
)
def test_shell_metacharacters_in_a_username_never_reach_a_job(admin_api, lab, name):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create(username=name)  # only the ORM allows such a name
    UserFactory(username="alice")
    response = assign(admin_api, lab, {"users": [name]})
    assert response.status_code == 400, response.json()
    assert error_fields(response) == ["users"]
    [row] = response.json()["results"]
    assert row["error"]["field"] == "user" and "characters" in row["error"]["message"]
    assert not LabSession.objects.exists() and not Job.objects.exists()
    # Among others, only that user is refused.
    response = assign(admin_api, lab, {"users": ["alice", name]})
    assert response.status_code == 201
    alice, bad = response.json()["results"]
    assert alice["error"] is None and bad["error"]["status"] == 400
    assert [j.extra_vars["lab_session_username"] for j in Job.objects.all()] == ["alice"]


# --- sessions: reads ----------------------------------------------------------------------


def test_users_see_only_their_own_sessions(user_api, lab):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    mine, _ = actions.do_assign(lab, alice)
    theirs, _ = actions.do_assign(lab, bob)
    client = user_api(alice)
    listing = client.get("/api/lab-sessions/").json()
    assert [s["id"] for s in listing["results"]] == [mine.pk]
    row = listing["results"][0]
    assert row["lab_name"] == "intro" and row["lab_description"] == "Intro to Linux"
    assert row["status"] == S.PROVISIONING and row["waiting_for_server"] is False
    assert 7100 < row["time_left_seconds"] <= 7200
    assert "token_hash" not in row and "last_output" not in row and "token" not in row
    assert client.get(f"/api/lab-sessions/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/lab-sessions/{mine.pk}/").status_code == 200
    # filters cannot widen the view
    assert client.get("/api/lab-sessions/", {"user": "bob"}).json()["results"] == []


def test_anonymous_sees_nothing(api, lab):
    actions.do_assign(lab, UserFactory())
    assert api.get("/api/lab-sessions/").status_code in (401, 403)


def test_admin_sees_all_and_filters(admin_api, lab):
    alice = UserFactory(username="alice")
    actions.do_assign(lab, alice)
    failed = session_in(lab, S.FAILED)
    waiting = session_in(lab, S.REQUESTED)
    LabSession.objects.filter(pk=waiting.pk).update(waiting_for_server=True)

    def ids(**params):
        return {s["id"] for s in admin_api.get("/api/lab-sessions/", params).json()["results"]}

    assert len(ids()) == 3
    assert ids(status="failed") == {failed.pk}
    assert ids(user="alice") == {LabSession.objects.get(user=alice).pk}
    assert ids(waiting_for_server="true") == {waiting.pk}
    assert ids(live="false") == {failed.pk}
    assert len(ids(lab=lab.pk)) == 3 and ids(lab=lab.pk + 1) == set()
    row = admin_api.get(f"/api/lab-sessions/{failed.pk}/").json()
    assert "last_output" in row and "last_rc" in row and "token_hash" not in row
    response = admin_api.get("/api/lab-sessions/", {"status": "bogus"})
    assert response.status_code == 400 and error_fields(response) == ["status"]


# --- sessions: retry, extend, end ---------------------------------------------------------


def test_retry_a_failed_session_launches_provisioning_again(admin_api, lab):
    session = session_in(lab, S.FAILED)
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/retry/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == S.PROVISIONING
    assert [j.action for j in jobs_of(session)] == ["labs.provision", "labs.provision"]


@pytest.mark.parametrize("status", [S.ACTIVE, S.PROVISIONING, S.EXPIRED, S.REQUESTED])
def test_retry_is_409_unless_failed(admin_api, lab, status):
    session = session_in(lab, status)
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/retry/")
    assert response.status_code == 409 and error_fields(response) == ["status"]
    assert jobs_of(session).count() == 1


def test_extend_by_minutes_and_until(admin_api, lab):
    session = session_in(lab, S.ACTIVE)
    expiry = session.access_expiry
    response = admin_api.post(
        f"/api/lab-sessions/{session.pk}/extend/", {"minutes": 60}, format="json"
    )
    assert response.status_code == 200, response.json()
    session.refresh_from_db()
    assert session.access_expiry == expiry + timedelta(minutes=60)
    until = timezone.now() + timedelta(days=3)
    response = admin_api.post(
        f"/api/lab-sessions/{session.pk}/extend/", {"until": until.isoformat()}, format="json"
    )
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.access_expiry == until
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/extend/", {}, format="json")
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.access_expiry == until + lab.default_duration


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": -5}, "minutes"),
        ({"minutes": "x"}, "minutes"),
        ({"minutes": 10**9}, "minutes"),
        ({"until": "2001-01-01T00:00:00Z"}, "access_expiry"),
        ({"until": "yesterday"}, "until"),
        ({"until": "9999-12-31T23:59:59Z"}, "until"),
        ({"minutes": 5, "until": "2040-01-01T00:00:00Z"}, "until"),
    ],
)
def test_extend_bad_values_are_400(admin_api, lab, body, field):
    session = session_in(lab, S.ACTIVE)
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/extend/", body, format="json")
    assert response.status_code == 400, response.json()
    assert error_fields(response) == [field]
    assert LabSession.objects.get(pk=session.pk).access_expiry == session.access_expiry


@pytest.mark.parametrize("status", [S.EXPIRED, S.EXPIRING, S.FAILED, S.CLEANUP_FAILED])
def test_extend_is_409_when_not_live(admin_api, lab, status):
    session = session_in(lab, status)
    response = admin_api.post(
        f"/api/lab-sessions/{session.pk}/extend/", {"minutes": 5}, format="json"
    )
    assert response.status_code == 409


def test_end_an_active_session_runs_the_cleanup(admin_api, lab):
    session = session_in(lab, S.ACTIVE)
    Job.objects.update(status=JobStatus.SUCCESSFUL)
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/end/")
    assert response.status_code == 200, response.json()
    session.refresh_from_db()
    assert session.status == S.EXPIRING and session.access_expiry <= timezone.now()
    cleanup = jobs_of(session).last()
    assert cleanup.playbook == "lab_cleanup.yml" and cleanup.action == "labs.cleanup"
    assert cleanup.extra_vars["lab_session_script"] == "/opt/labs/intro/cleanup.sh"
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/end/")
    assert response.status_code == 409 and error_fields(response) == ["status"]


def test_end_before_provisioning_started_cancels_it_and_expires(admin_api, lab):
    session, _ = actions.do_assign(lab, UserFactory())
    response = admin_api.post(f"/api/lab-sessions/{session.pk}/end/")
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == S.EXPIRED
    assert [j.status for j in jobs_of(session)] == [JobStatus.CANCELED]


def test_operating_sessions_is_for_admins(user_api, lab):
    alice = UserFactory()
    session = session_in(lab, S.FAILED, user=alice)
    client = user_api(alice)
    for verb in ("retry", "end"):
        assert client.post(f"/api/lab-sessions/{session.pk}/{verb}/").status_code == 403
    # extend: a user's own one extension, of an active session of a lab that allows it
    assert client.post(f"/api/lab-sessions/{session.pk}/extend/").status_code == 409
    session.refresh_from_db()
    assert session.status == S.FAILED and session.user_extended_at is None


def test_operating_an_unknown_session_is_404(admin_api):
    for verb in ("retry", "extend", "end"):
        assert admin_api.post(f"/api/lab-sessions/999999/{verb}/").status_code == 404


# --- a user's own extension (once) and access instructions ---------------------------------


def test_a_user_extends_their_active_session_once(user_api, lab):
    lab.user_extend_minutes = 30
    lab.save()
    alice = UserFactory()
    session = session_in(lab, S.ACTIVE, user=alice)
    expiry = session.access_expiry
    client = user_api(alice)
    assert client.get(f"/api/lab-sessions/{session.pk}/").json()["can_extend"] is True
    response = client.post(f"/api/lab-sessions/{session.pk}/extend/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["can_extend"] is False and body["user_extended_at"]
    assert "last_output" not in body  # the user's view, not the admin's
    session.refresh_from_db()
    assert session.access_expiry == expiry + timedelta(minutes=30)
    again = client.post(f"/api/lab-sessions/{session.pk}/extend/")
    assert again.status_code == 409 and again.json()["code"] == "already_extended"
    session.refresh_from_db()
    assert session.access_expiry == expiry + timedelta(minutes=30)


def test_a_user_cannot_extend_when_the_lab_allows_none(user_api, lab):
    alice = UserFactory()
    session = session_in(lab, S.ACTIVE, user=alice)
    client = user_api(alice)
    assert client.get(f"/api/lab-sessions/{session.pk}/").json()["can_extend"] is False
    response = client.post(f"/api/lab-sessions/{session.pk}/extend/")
    assert response.status_code == 409 and response.json()["code"] == "extend_not_allowed"
    assert LabSession.objects.get(pk=session.pk).access_expiry == session.access_expiry


def test_a_user_does_not_choose_the_length_nor_extend_others(user_api, lab):
    lab.user_extend_minutes = 30
    lab.save()
    alice, bob = UserFactory(), UserFactory()
    session = session_in(lab, S.ACTIVE, user=alice)
    response = user_api(alice).post(
        f"/api/lab-sessions/{session.pk}/extend/", {"minutes": 600}, format="json"
    )
    assert response.status_code == 400 and error_fields(response) == ["minutes"]
    assert user_api(bob).post(f"/api/lab-sessions/{session.pk}/extend/").status_code == 404
    session.refresh_from_db()
    assert session.user_extended_at is None


def test_an_admin_extension_does_not_use_up_the_users_one(admin_api, lab):
    lab.user_extend_minutes = 30
    lab.save()
    session = session_in(lab, S.ACTIVE)
    assert (
        admin_api.post(
            f"/api/lab-sessions/{session.pk}/extend/", {"minutes": 5}, format="json"
        ).status_code
        == 200
    )
    assert LabSession.objects.get(pk=session.pk).user_extended_at is None


def test_access_instructions_are_filled_in_for_an_active_session(user_api, admin_api, lab):
    response = admin_api.patch(
        f"/api/labs/{lab.pk}/",
        {
            "access_instructions": "kubectl -n {namespace} --user {username} ({lab}) {{x}} "
            "<b>{namespace}</b>",
            "user_extend_minutes": 15,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["user_extend_minutes"] == 15
    alice = UserFactory(username="alice")
    session = session_in(lab, S.ACTIVE, user=alice)
    body = user_api(alice).get(f"/api/lab-sessions/{session.pk}/").json()
    assert body["access_instructions"] == (
        f"kubectl -n {session.namespace} --user alice (intro) {{x}} <b>{session.namespace}</b>"
    )
    assert body["user_extend_minutes"] == 15
    LabSession.objects.filter(pk=session.pk).update(status=S.EXPIRED)
    assert (
        user_api(alice).get(f"/api/lab-sessions/{session.pk}/").json()["access_instructions"] == ""
    )


@pytest.mark.parametrize(
    "text",
    ["{namespace.__class__}", "{user}", "{namespace!r}", "{namespace:>99999}", "a { b", "{0}"],
)
def test_access_instructions_with_unknown_placeholders_are_400(admin_api, lab, text):
    response = admin_api.patch(f"/api/labs/{lab.pk}/", {"access_instructions": text}, format="json")
    assert response.status_code == 400 and error_fields(response) == ["access_instructions"]


def test_filling_never_evaluates_more_than_plain_names():
    from portal.labs.instructions import fill

    values = {"namespace": "ns-1", "username": "{lab}", "lab": "x"}
    assert (
        fill("{namespace} {namespace.__class__} {username} {nope} {{", values)
        == "ns-1 {namespace.__class__} {lab} {nope} {"
    )
    assert fill("a { b", values) == "a { b"  # stored before validation: shown as written
