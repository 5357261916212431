"""The workspaces web UI (server side): who sees which cards and buttons; no password in HTML."""

import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from portal.core.errors import Conflict
from portal.core.tenancy import MembershipRole
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobEvent
from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import AdminFactory, MembershipFactory, UserFactory
from tests.workspaces.helpers import finish_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("broker", "test_settings")]
PLAYBOOKS = Path(__file__).parent / "playbooks"
PAGE = "/workspaces/"
STATE = "/workspaces/state/"


@pytest.fixture
def test_settings(settings):
    cache.clear()  # the progress estimate is cached
    settings.PLAYBOOKS_DIR = PLAYBOOKS  # jobs are launched, never run, here


@pytest.fixture
def running(member, ws_node, django_capture_on_commit_callbacks):
    """The member's workspace, provisioned and running."""
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "Data lab")
    workspace.refresh_from_db()
    finish_job(
        workspace.current_job,
        {workspace.slug: {"ok": True, "active_state": "active", "healthy": True}},
    )
    workspace.refresh_from_db()
    assert workspace.status == S.RUNNING
    return workspace


def _state(client) -> dict:
    response = client.get(STATE)
    assert response.status_code == 200
    return {item["id"]: item for item in response.json()["workspaces"]}


def _hidden(page: str, testid: str) -> bool:
    [tag] = re.findall(rf'<button[^>]*data-testid="{testid}"[^>]*>', page)
    return " hidden" in tag


def _buttons(client, workspace) -> dict:
    return _state(client)[workspace.pk]["can"]


# --- who sees what ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, STATE, "/workspaces/1/card/"])
def test_anonymous_users_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_a_member_sees_the_workspaces_of_their_customer_only(running, client, ws_node):
    colleague = MembershipFactory(customer=running.customer, role=MembershipRole.MEMBER).user
    stranger = MembershipFactory()
    theirs = actions.do_create(stranger.customer, stranger.user, "Not yours")
    client.force_login(colleague)
    page = client.get(PAGE).content.decode()
    assert "Data lab" in page and running.url in page
    assert f"{ws_node.name}:{running.port}" in page
    assert "Not yours" not in page and theirs.slug not in page
    assert set(_state(client)) == {running.pk}
    assert client.get(f"/workspaces/{theirs.pk}/card/").status_code == 404
    assert client.get(f"/workspaces/{running.pk}/card/").status_code == 200


def test_the_card_shows_status_reason_quota_and_limits(running, client):
    client.force_login(running.owner)
    page = client.get(PAGE).content.decode()
    assert 'data-testid="ws-card"' in page and f'data-slug="{running.slug}"' in page
    assert 'data-status="running"' in page and ">Running<" in page
    assert running.status_reason in page  # "running at https://…"
    assert f"{running.disk_quota_gb} GB disk" in page
    assert f"{running.memory_limit_mb} MB memory" in page
    assert 'data-testid="ws-open"' in page and f'href="{running.url}"' in page


def test_deleted_workspaces_are_not_shown(running, client):
    Workspace.objects.filter(pk=running.pk).update(status=S.DELETED, port=None)
    client.force_login(running.owner)
    page = client.get(PAGE).content.decode()
    assert "Data lab" not in page and 'data-testid="ws-empty"' in page
    assert _state(client) == {}


def test_the_password_is_never_part_of_a_page(running, client):
    client.force_login(running.owner)
    for url in (PAGE, STATE, f"/workspaces/{running.pk}/card/"):
        assert running.password not in client.get(url).content.decode()
    # … only of the API answer to the owner's click:
    assert (
        client.get(f"/api/workspaces/{running.pk}/password/").json()["password"] == running.password
    )


def test_an_admin_sees_every_customers_workspaces_and_chooses_customer_and_owner(running, client):
    client.force_login(AdminFactory())
    page = client.get(PAGE).content.decode()
    assert "Data lab" in page
    assert 'data-testid="ws-create-customer"' in page and 'data-testid="ws-create-owner"' in page
    assert _buttons(client, running)["password"] is True


def test_a_member_of_one_customer_is_not_asked_which(running, client):
    client.force_login(running.owner)
    page = client.get(PAGE).content.decode()
    assert 'data-testid="ws-create-dialog"' in page and 'data-testid="ws-create-name"' in page
    assert 'data-testid="ws-create-customer"' not in page


def test_a_member_of_two_customers_chooses_one(running, client):
    MembershipFactory(user=running.owner)
    client.force_login(running.owner)
    assert 'data-testid="ws-create-customer"' in client.get(PAGE).content.decode()


# --- buttons: from the actions' checks and the API's permissions -----------------------------


def test_buttons_follow_status_and_permission(running, client):
    client.force_login(running.owner)
    assert _buttons(client, running) == {
        "start": False,
        "stop": True,
        "restart": True,
        "logs": True,
        "delete": True,
        "password": True,
    }

    boss = MembershipFactory(customer=running.customer, role=MembershipRole.OWNER).user
    client.force_login(boss)
    assert _buttons(client, running) == {
        "start": False,
        "stop": True,
        "restart": True,
        "logs": True,
        "delete": True,
        "password": False,
    }

    colleague = MembershipFactory(customer=running.customer, role=MembershipRole.MEMBER).user
    client.force_login(colleague)
    assert not any(_buttons(client, running).values())  # members only see
    page = client.get(PAGE).content.decode()
    for testid in (
        "ws-start",
        "ws-stop",
        "ws-restart",
        "ws-delete",
        "ws-password-reveal",
        "ws-logs-button",
    ):
        assert _hidden(page, testid)
    client.force_login(running.owner)
    page = client.get(PAGE).content.decode()
    assert _hidden(page, "ws-start") and not _hidden(page, "ws-stop")
    assert not _hidden(page, "ws-password-reveal") and not _hidden(page, "ws-delete")


def test_a_busy_workspace_offers_nothing_but_its_progress(running, client):
    [job] = actions.do_operate([running], "stop", by=running.owner)
    client.force_login(running.owner)
    state = _state(client)[running.pk]
    assert state["busy"] is True
    assert not any(value for op, value in state["can"].items() if op != "password")
    assert state["job"] == {
        "id": job.pk,
        "status": JobStatus.PENDING,
        "label": "stop",
        "active": True,
        "expected_tasks": None,
    }
    finish_job(job, {running.slug: {"ok": True, "active_state": "inactive", "healthy": False}})
    state = _state(client)[running.pk]
    assert state["status"] == S.STOPPED and state["busy"] is False and state["job"] is None
    assert state["can"]["start"] and not state["can"]["stop"] and state["can"]["delete"]
    assert state["health"] == "unit inactive, not answering /healthz"


def test_the_progress_estimate_counts_the_tasks_of_the_last_run_like_it(running, client):
    client.force_login(running.owner)
    [stop] = actions.do_operate([running], "stop", by=running.owner)
    assert _state(client)[running.pk]["job"]["expected_tasks"] is None  # none ran before
    now = timezone.now()
    JobEvent.objects.bulk_create(
        [
            JobEvent(job=stop, counter=n, event="playbook_on_task_start", uuid=f"t{n}", created=now)
            for n in range(1, 5)
        ]
    )
    finish_job(stop, {running.slug: {"ok": True}})
    [start] = actions.do_operate([running], "start", by=running.owner)
    assert _state(client)[running.pk]["job"]["expected_tasks"] is None  # a start: none yet
    finish_job(start, {running.slug: {"ok": True}})
    running.refresh_from_db()
    assert running.status == S.RUNNING
    cache.clear()
    actions.do_operate([running], "stop", by=running.owner)
    assert _state(client)[running.pk]["job"]["expected_tasks"] == 4


@pytest.mark.parametrize(
    "status", [S.PENDING, S.RUNNING, S.STOPPED, S.FAILED, S.PROVISIONING, S.DELETING]
)
@pytest.mark.parametrize("busy", [False, True])
def test_the_delete_button_is_shown_exactly_when_the_delete_action_allows_it(
    running, client, status, busy
):
    job = Job.objects.get(action=actions.CREATE)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING if busy else JobStatus.SUCCESSFUL)
    Workspace.objects.filter(pk=running.pk).update(status=status, current_job=job)
    running.refresh_from_db()
    client.force_login(running.owner)
    shown = _buttons(client, running)["delete"]
    try:
        with transaction.atomic():
            actions.do_delete(running, by=running.owner)
            raise RuntimeError("roll back")
    except Conflict:
        allowed = False
    except RuntimeError:
        allowed = True
    assert shown == allowed


# --- login and navigation --------------------------------------------------------------------


def test_login_lands_on_the_workspaces_and_the_nav_reaches_the_labs(client):
    UserFactory(username="dora")
    response = client.post("/accounts/login/", {"username": "dora", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response["Location"] == PAGE
    page = client.get(PAGE).content.decode()
    assert 'href="/labs/"' in page and 'href="/workspaces/"' in page
    assert client.get("/labs/").status_code == 200


def test_the_page_loads_its_script_and_styles(running, client):
    client.force_login(running.owner)
    page = client.get(PAGE).content.decode()
    assert "workspaces/dashboard.js" in page and "workspaces/dashboard.css" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert finders.find("workspaces/dashboard.js") and finders.find("workspaces/dashboard.css")


def test_the_state_is_json_with_no_secret(running, client):
    client.force_login(running.owner)
    body = client.get(STATE).content.decode()
    data = json.loads(body)["workspaces"][0]
    assert data["url"] == running.url and data["address"].endswith(f":{running.port}")
    assert "password" not in {key for key in data if key != "can"}
    assert running.password not in body


# --- usage against the plan; failures explained in words (#19 customer path) -----------------


def test_the_page_shows_usage_against_the_plan(running, client):
    from portal.workspaces.selectors import plan_usage

    plan = running.customer.plan
    Workspace.objects.filter(pk=running.pk).update(quota_used_bytes=3 * 1024**2)
    [row] = plan_usage(running.owner)
    assert row["used"] == 1 and row["limit"] == plan.workspace_limit
    assert row["text"] == f"1 of {plan.workspace_limit} workspace" + (
        "s" if plan.workspace_limit != 1 else ""
    )
    assert row["disk_quota_gb"] == plan.disk_quota_gb and row["disk_used_bytes"] == 3 * 1024**2
    client.force_login(running.owner)
    page = client.get(PAGE).content.decode()
    assert row["text"] in page and f"{plan.disk_quota_gb} GB disk per workspace" in page
    assert "3.0\xa0MB used" in page
    assert _state_usage(client) == [row]  # kept live by the poll
    Workspace.objects.filter(pk=running.pk).update(status=S.DELETED, port=None)
    assert plan_usage(running.owner)[0]["used"] == 0  # deleted ones do not count
    assert _state_usage(client)[0]["text"].startswith("0 of ")


def _state_usage(client) -> list:
    return client.get(STATE).json()["usage"]


def test_an_admin_of_no_customer_sees_no_usage(running, client):
    from portal.workspaces.selectors import plan_usage

    admin = AdminFactory()
    assert plan_usage(admin) == []
    client.force_login(admin)
    assert 'data-testid="ws-usage-summary"' not in client.get(PAGE).content.decode()


def test_usage_counts_only_the_users_customers(running):
    from portal.workspaces.selectors import plan_usage

    stranger = MembershipFactory()
    assert [row["customer"] for row in plan_usage(stranger.user)] == [stranger.customer.name]
    assert plan_usage(stranger.user)[0]["used"] == 0


@pytest.mark.parametrize(
    "reason, words",
    [
        (
            "node web-1 unreachable (5 attempts: Failed to connect); nothing was done on it.",
            "could not be reached",
        ),
        (
            "provisioning failed: assertion failed: refusing workspace items: x; rolling back",
            "were undone",
        ),
        ("rollback failed: boom; delete the workspace to try again", "undoing the steps"),
        ("Traefik did not show the route ws-x within 60 s; rolling back", "web address"),
        ("provisioning failed: btrfs qgroup limit failed; rolling back", "disk space"),
        ("provisioning timeout: the job ended timeout; rolling back", "took too long"),
        ("something nobody foresaw", "Something went wrong"),
    ],
)
def test_a_failed_card_explains_the_failure_in_words(running, client, reason, words):
    from portal.workspaces.explain import status_help

    Workspace.objects.filter(pk=running.pk).update(status=S.FAILED, status_reason=reason)
    assert words in status_help(S.FAILED, reason)
    client.force_login(running.owner)
    item = _state(client)[running.pk]
    assert words in item["status_help"] and item["status_reason"] == reason
    page = client.get(PAGE).content.decode()
    assert words in page
    assert re.search(
        r'<details class="ws-reason-details" data-testid="ws-reason-details"\s*>', page
    )  # the raw reason stays, behind a "Details" toggle
    api = client.get(f"/api/workspaces/{running.pk}/").json()
    assert words in api["status_help"] and api["status_reason"] == reason


def test_a_running_workspace_needs_no_explaining(running, client):
    client.force_login(running.owner)
    assert _state(client)[running.pk]["status_help"] == ""
    assert client.get(f"/api/workspaces/{running.pk}/").json()["status_help"] == ""


def test_no_workspace_node_says_the_admins_are_told_and_to_try_later(member, client, caplog):
    with pytest.raises(Conflict) as refused:
        actions.do_create(member[1], member[0], "No room")
    assert refused.value.code == "no_node"
    assert "administrators have been told" in refused.value.message
    assert "try again later" in refused.value.message
    assert any(
        r.levelname == "WARNING" and "no enabled workspace node" in r.getMessage()
        for r in caplog.records
    )
    client.force_login(member[0])
    response = client.post("/api/workspaces/", {"name": "No room"}, content_type="application/json")
    assert response.status_code == 409
    assert "try again later" in json.dumps(response.json())


def test_a_full_node_says_the_admins_are_told_and_to_try_later(member, ws_node, caplog):
    ws_node.workspace_port_end = ws_node.workspace_port_start
    ws_node.save()
    actions.do_create(member[1], member[0], "One")
    with pytest.raises(Conflict) as refused:
        actions.do_create(member[1], member[0], "Two")
    assert refused.value.code == "no_capacity"
    assert "administrators have been told" in refused.value.message
    assert any(
        r.levelname == "WARNING" and "no free port" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    "status, reason, words",
    [
        (
            S.DELETING,
            "node ws-1 unreachable: the delete will be retried at 12:00:00 (attempt 2; x)",
            "tries again by itself",
        ),
        (
            S.PROVISIONING,
            "waiting for node ws-1 (unreachable); retrying at 12:00:00",
            "tries again by itself",
        ),
        (S.RUNNING, "stop failed: unit not found", "last operation did not work"),
        (S.RUNNING, "running at https://a.workspaces.localhost", ""),
        (S.STOPPED, "stopped", ""),
    ],
)
def test_a_workspace_that_has_not_failed_gets_no_failure_advice(status, reason, words):
    from portal.workspaces.explain import status_help

    text = status_help(status, reason)
    assert (words in text) if words else text == ""
    assert "Delete" not in text
