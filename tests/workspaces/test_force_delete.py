"""Forcing the delete of a workspace whose node cannot be reached: admins only, in the API
(`DELETE …?force=true`) and the admin (issue #19, broken 1)."""

import pytest
from django.urls import reverse

from portal.jobs.choices import JobStatus
from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import AdminFactory
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")
URL = "/api/workspaces/"
UNREACHABLE = {"ws-node-1": {"ok": 1, "unreachable": 1}}


@pytest.fixture
def delete_failed(member, ws_node, django_capture_on_commit_callbacks, settings):
    """A running workspace whose delete could not reach its node (twice)."""
    settings.WORKSPACE_RETRY_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "ide")
    workspace.refresh_from_db()
    finish_job(workspace.current_job, {"ide": {"ok": True}})
    actions.do_delete(workspace)
    workspace.refresh_from_db()
    job = workspace.current_job
    finish_job(
        job, None, status=JobStatus.FAILED, reason="host unreachable", host_summary=UNREACHABLE
    )
    workspace.refresh_from_db()
    assert (
        workspace.status == S.DELETING and "the delete will be retried" in workspace.status_reason
    )
    finish_job(
        workspace.current_job,
        None,
        status=JobStatus.FAILED,
        reason="host unreachable",
        host_summary=UNREACHABLE,
    )
    workspace.refresh_from_db()
    assert workspace.status == S.FAILED and workspace.port == 8001
    return workspace


def test_a_member_may_not_force_a_delete(member, delete_failed, user_api):
    response = user_api(member[0]).delete(f"{URL}{delete_failed.pk}/?force=true")
    assert response.status_code == 403, response.json()
    assert response.json()["errors"][0]["field"] == "force"
    assert Workspace.objects.get(pk=delete_failed.pk).status == S.FAILED


def test_a_bad_force_value_is_a_400(delete_failed, user_api):
    response = user_api(AdminFactory()).delete(f"{URL}{delete_failed.pk}/?force=maybe")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "force"


def test_an_admin_forces_the_delete_over_the_api(delete_failed, user_api):
    admin = AdminFactory()
    response = user_api(admin).delete(f"{URL}{delete_failed.pk}/?force=true")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == S.DELETED
    delete_failed.refresh_from_db()
    assert delete_failed.port is None and not delete_failed.on_node
    history = user_api(admin).get(f"{URL}{delete_failed.pk}/history/").json()
    first = (history.get("results") or history)[0]
    assert first["by"] == admin.username and "leftovers" in first["message"]
    assert "ws-node-1:8001" in first["message"]


def test_without_force_the_user_retries_the_delete(member, delete_failed, user_api):
    response = user_api(member[0]).delete(f"{URL}{delete_failed.pk}/?force=false")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == S.DELETING


def test_force_delete_is_an_admin_action(admin_client, delete_failed):
    response = admin_client.post(
        reverse("admin:workspaces_workspace_changelist"),
        {"action": "force_delete_selected", "_selected_action": [delete_failed.pk]},
        follow=True,
    )
    assert "1 workspace(s) deleted by force" in response.content.decode()
    delete_failed.refresh_from_db()
    assert delete_failed.status == S.DELETED and delete_failed.port is None
    assert "leftovers" in delete_failed.history.first().message


def test_a_failed_workspace_that_never_reached_its_node_is_deleted_in_the_api_at_once(
    member, ws_node, django_capture_on_commit_callbacks, user_api, settings
):
    settings.WORKSPACE_RETRY_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "ide")
    workspace.refresh_from_db()
    finish_job(
        workspace.current_job,
        None,
        status=JobStatus.FAILED,
        reason="host unreachable",
        host_summary=UNREACHABLE,
    )
    workspace.refresh_from_db()
    assert workspace.status == S.FAILED and workspace.current_job is None
    response = user_api(member[0]).delete(f"{URL}{workspace.pk}/")
    assert response.status_code == 202 and response.json()["status"] == S.DELETED
