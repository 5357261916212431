"""PATCH /api/workspaces/{id}/ is partial, and a rename changes the name only (issue #19)."""

import pytest

from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace

pytestmark = pytest.mark.usefixtures("broker")
URL = "/api/workspaces/"


@pytest.fixture
def provisioning(member, ws_node, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "mine")
    workspace.refresh_from_db()
    assert workspace.status == S.PROVISIONING and workspace.status_reason
    return workspace


def test_a_patch_with_only_the_slug_names_the_slug_not_a_missing_name(provisioning, user_api):
    response = user_api(provisioning.owner).patch(
        f"{URL}{provisioning.pk}/", {"slug": "x"}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert [e["field"] for e in response.json()["errors"]] == ["slug"]
    assert response.json()["errors"][0]["code"] == "read_only"


def test_a_patch_without_the_name_changes_nothing(provisioning, user_api):
    before = Workspace.objects.filter(pk=provisioning.pk).values().get()
    response = user_api(provisioning.owner).patch(
        f"{URL}{provisioning.pk}/", {"id": provisioning.pk}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "mine"
    assert Workspace.objects.filter(pk=provisioning.pk).values().get() == before
    assert not provisioning.history.filter(message__startswith="renamed").exists()


def test_a_rename_during_provisioning_keeps_the_status_reason(provisioning, user_api):
    reason = provisioning.status_reason
    response = user_api(provisioning.owner).patch(
        f"{URL}{provisioning.pk}/", {"name": "Renamed"}, format="json"
    )
    assert response.status_code == 200, response.json()
    provisioning.refresh_from_db()
    assert (provisioning.name, provisioning.status) == ("Renamed", S.PROVISIONING)
    assert provisioning.status_reason == reason
    assert provisioning.history.filter(message__startswith="renamed from 'mine'").exists()


def test_a_number_is_no_name(provisioning, member, user_api):
    api = user_api(provisioning.owner)
    response = api.patch(f"{URL}{provisioning.pk}/", {"name": 123}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["message"] == "name: Not a valid string."
    response = api.post(URL, {"name": 123}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["message"] == "name: Not a valid string."
    assert list(Workspace.objects.values_list("name", flat=True)) == ["mine"]
