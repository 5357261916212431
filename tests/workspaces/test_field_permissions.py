"""Issue #12, finding 3, for workspaces: the portal chooses node, port, Linux user, quota
and status; a member names only the display name (and slug, customer on create; the owner
is admins-only). Any other field of the workspace is a 400 naming it, and nothing is stored.
"""

import pytest

from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import AdminFactory, MembershipFactory, NodeFactory, UserFactory
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")
URL = "/api/workspaces/"

REFUSED = {
    "node": "ws-node-2",
    "port": 8099,
    "linux_username": "root",
    "status": "running",
    "status_reason": "fine",
    "disk_quota_gb": 1000,
    "cpu_limit": "64",
    "memory_limit_mb": 999999,
    "quota_backend": "none",
    "current_job": 1,
    "url": "https://evil.test",
    "deleted_at": None,
}


@pytest.fixture
def mine(member, ws_node, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "mine")
    workspace.refresh_from_db()
    finish_job(workspace.current_job, {"mine": {"ok": True}})
    workspace.refresh_from_db()
    assert workspace.status == S.RUNNING
    return workspace


def _stored(workspace):
    row = Workspace.objects.get(pk=workspace.pk)
    return {
        f: getattr(row, f)
        for f in (
            "name",
            "slug",
            "customer_id",
            "owner_id",
            "node_id",
            "port",
            "linux_username",
            "status",
            "disk_quota_gb",
            "cpu_limit",
            "memory_limit_mb",
            "quota_backend",
        )
    }


@pytest.mark.parametrize("field", [*REFUSED, "slug", "customer", "owner"])
def test_rename_refuses_every_other_field(mine, user_api, field):
    NodeFactory(name="ws-node-2")
    other = MembershipFactory()
    value = {
        **REFUSED,
        "slug": "other",
        "customer": other.customer.pk,
        "owner": other.user.username,
    }[field]
    before = _stored(mine)
    response = user_api(mine.owner).patch(
        f"{URL}{mine.pk}/", {"name": "Renamed", field: value}, format="json"
    )
    assert response.status_code == 400, response.json()
    error = response.json()["errors"][0]
    assert error["field"] == field and error["code"] == "read_only"
    assert _stored(mine) == before


@pytest.mark.parametrize("field", list(REFUSED))
def test_create_refuses_what_the_portal_chooses(member, ws_node, user_api, field):
    response = user_api(member[0]).post(URL, {"name": "New", field: REFUSED[field]}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert not Workspace.objects.exists()


def test_a_member_cannot_create_for_someone_else_or_in_another_customer(member, ws_node, user_api):
    other = MembershipFactory()
    client = user_api(member[0])
    for body, field in (
        ({"name": "x", "owner": other.user.username}, "owner"),
        ({"name": "x", "customer": other.customer.pk}, "customer"),
    ):
        response = client.post(URL, body, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == field
    assert not Workspace.objects.exists()


def test_a_rename_sending_back_id_and_created_at_is_fine(mine, user_api):
    response = user_api(mine.owner).patch(
        f"{URL}{mine.pk}/",
        {"id": mine.pk, "created_at": "2020-01-01T00:00:00Z", "name": "Renamed"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["name"] == "Renamed"


def test_admins_cannot_move_a_workspace_either(mine, user_api):
    response = user_api(AdminFactory()).patch(f"{URL}{mine.pk}/", {"port": 8050}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "port"


# --- filters do not reveal which ids exist ------------------------------------------------------


@pytest.mark.parametrize("name", ["customer", "node"])
def test_id_filters_answer_the_same_for_foreign_and_unknown_ids(mine, user_api, name):
    stranger = MembershipFactory()
    client = user_api(stranger.user)
    existing = mine.customer_id if name == "customer" else mine.node_id
    unknown = client.get(URL, {name: existing + 1000})
    foreign = client.get(URL, {name: existing})
    assert unknown.status_code == foreign.status_code == 200
    assert (
        unknown.json()
        == foreign.json()
        == {"count": 0, "next": None, "previous": None, "results": []}
    )
    # and the filter works for those who may see it
    own = user_api(mine.owner).get(URL, {name: existing}).json()
    assert [w["id"] for w in own["results"]] == [mine.pk]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", str(2**63)])
@pytest.mark.parametrize("name", ["customer", "node"])
def test_bad_id_filter_values_are_400_naming_the_filter(user_api, name, value):
    response = user_api(UserFactory()).get(URL, {name: value})
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == name
