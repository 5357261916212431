"""The workspaces API: who sees and who acts; clear 4xx for bad input; the Traefik provider."""

import pytest

from portal.core.tenancy import MembershipRole
from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import AdminFactory, MembershipFactory, UserFactory
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")
URL = "/api/workspaces/"


@pytest.fixture
def client_for(user_api):
    return user_api


@pytest.fixture
def mine(member, ws_node, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "mine")
    workspace.refresh_from_db()
    finish_job(workspace.current_job, {"mine": {"ok": True}})
    workspace.refresh_from_db()
    assert workspace.status == S.RUNNING
    return workspace


def test_a_member_creates_a_workspace_for_themselves(member, ws_node, client_for):
    api = client_for(member[0])
    response = api.post(URL, {"name": "Notebook"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "notebook" and body["owner"] == member[0].username
    assert body["status"] in ("pending", "provisioning") and "password" not in body
    assert body["url"].startswith("https://notebook.")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "slug": "Not A Slug!"}, "slug"),
        ({"name": "bidi\u202e"}, "name"),
        ({"name": "ok", "customer": 999999}, "customer"),
        ({"name": "ok", "owner": "someone"}, "owner"),
        ({"name": ["list"]}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(member, ws_node, client_for, payload, field):
    response = client_for(member[0]).post(URL, payload, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert not Workspace.objects.exists()


def test_plan_limit_over_the_api_is_a_409(member, ws_node, client_for):
    member[1].plan.workspace_limit = 1
    member[1].plan.save()
    api = client_for(member[0])
    assert api.post(URL, {"name": "a"}, format="json").status_code == 201
    response = api.post(URL, {"name": "b"}, format="json")
    assert response.status_code == 409
    assert (
        response.json()["code"] == "plan_limit" and response.json()["errors"][0]["field"] == "plan"
    )


def test_other_customers_get_404_everywhere(mine, client_for):
    stranger = client_for(MembershipFactory().user)
    detail = f"{URL}{mine.pk}/"
    assert stranger.get(URL).json()["count"] == 0
    assert stranger.get(detail).status_code == 404
    for action in ("start/", "stop/", "restart/", "status/", "logs/", "resize/"):
        assert stranger.post(detail + action).status_code == 404
    assert stranger.get(detail + "password/").status_code == 404
    assert stranger.get(detail + "history/").status_code == 404
    assert stranger.delete(detail).status_code == 404
    assert stranger.patch(detail, {"name": "x"}, format="json").status_code == 404
    mine.refresh_from_db()
    assert mine.status == S.RUNNING and mine.current_job is None


def test_a_plain_member_sees_but_cannot_act_and_cannot_see_the_password(mine, client_for):
    colleague = MembershipFactory(customer=mine.customer, role=MembershipRole.MEMBER).user
    api = client_for(colleague)
    detail = f"{URL}{mine.pk}/"
    assert api.get(detail).status_code == 200
    assert api.post(detail + "stop/").status_code == 403
    assert api.delete(detail).status_code == 403
    assert api.get(detail + "password/").status_code == 403


def test_the_customers_owner_acts_but_only_the_owner_and_admins_see_the_password(mine, client_for):
    boss = MembershipFactory(customer=mine.customer, role=MembershipRole.OWNER).user
    api = client_for(boss)
    detail = f"{URL}{mine.pk}/"
    assert api.get(detail + "password/").status_code == 403
    response = api.post(detail + "stop/")
    assert response.status_code == 202 and response.json()["job"]
    assert client_for(mine.owner).get(detail + "password/").json() == {"password": mine.password}
    assert client_for(AdminFactory()).get(detail + "password/").json() == {
        "password": mine.password
    }


def test_operations_answer_202_with_the_job_and_409_when_busy_or_wrong_state(mine, client_for):
    api = client_for(mine.owner)
    detail = f"{URL}{mine.pk}/"
    assert api.post(detail + "start/").status_code == 409  # already running
    response = api.post(detail + "stop/")
    assert response.status_code == 202
    assert response.json()["workspace"]["busy"] is True
    again = api.post(detail + "restart/")
    assert again.status_code == 409 and again.json()["code"] == "busy"
    assert api.delete(detail).status_code == 409


def test_status_logs_and_history_read_what_was_recorded(mine, client_for):
    api = client_for(mine.owner)
    detail = f"{URL}{mine.pk}/"
    assert api.get(detail + "status/").json()["status"] == "running"
    assert api.get(detail + "logs/").json()["recent_logs"] == ""
    history = api.get(detail + "history/").json()["results"]
    assert [h["to_status"] for h in history][:1] == ["running"]


def test_rename_changes_the_display_name_only(mine, client_for):
    api = client_for(mine.owner)
    response = api.patch(f"{URL}{mine.pk}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"
    assert response.json()["slug"] == "mine"
    assert api.put(f"{URL}{mine.pk}/", {"name": "x"}, format="json").status_code == 405


def test_admin_creates_for_a_member_and_must_name_them(member, ws_node, client_for):
    api = client_for(AdminFactory())
    response = api.post(URL, {"name": "x", "customer": member[1].pk}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "owner"
    response = api.post(
        URL, {"name": "x", "customer": member[1].pk, "owner": member[0].username}, format="json"
    )
    assert response.status_code == 201 and response.json()["owner"] == member[0].username


def test_a_user_with_no_customer_is_told_to_name_one(ws_node, client_for):
    response = client_for(UserFactory()).post(URL, {"name": "x"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "customer"


# --- Traefik's HTTP provider -----------------------------------------------------------------


def test_the_provider_needs_its_token(client, settings):
    settings.TRAEFIK_PROVIDER_TOKEN = ""
    off = client.get("/api/traefik/config")
    assert off.status_code == 404
    assert off.json()["code"] == "disabled" and "TRAEFIK_PROVIDER_TOKEN" in off.json()["message"]
    assert off.json()["errors"][0]["code"] == "disabled"  # the API's one error shape
    settings.TRAEFIK_PROVIDER_TOKEN = "s3cret-token"
    refused = client.get("/api/traefik/config")
    assert refused.status_code == 401 and refused.json()["code"] == "not_authenticated"
    assert client.get("/api/traefik/config?token=wrong").status_code == 401


def test_the_provider_routes_running_workspaces_only(mine, client, settings):
    settings.TRAEFIK_PROVIDER_TOKEN = "s3cret-token"
    settings.WORKSPACES_DOMAIN = "ws.example.test"
    settings.TRAEFIK_ENTRYPOINTS = ["websecure"]
    settings.TRAEFIK_CERT_RESOLVER = "le"
    config = client.get("/api/traefik/config", HTTP_AUTHORIZATION="Bearer s3cret-token").json()
    assert config["http"]["routers"] == {
        "ws-mine": {
            "rule": "Host(`mine.ws.example.test`)",
            "service": "ws-mine",
            "entryPoints": ["websecure"],
            "tls": {"certResolver": "le"},
        }
    }
    assert config["http"]["services"]["ws-mine"]["loadBalancer"]["servers"] == [
        {"url": f"http://{mine.node.address}:{mine.port}"}
    ]
    actions.do_operate([mine], "stop")
    assert client.get("/api/traefik/config?token=s3cret-token").json() == {}
