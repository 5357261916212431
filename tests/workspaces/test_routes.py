"""Route confirmation is one pass per beat tick: no task waits for Traefik."""

import pytest

from portal.jobs.models import Job
from portal.workspaces import actions, tasks
from portal.workspaces.choices import S
from portal.workspaces.routing import TraefikUnavailable
from tests.helpers import stubbed_broker
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")

OK = {"ok": True, "active_state": "active", "healthy": True}


@pytest.fixture
def provisioned(member, ws_node, settings, django_capture_on_commit_callbacks):
    """A create whose run succeeded, Traefik's API configured: waiting for its route."""
    settings.TRAEFIK_API_URL = "http://127.0.0.1:1/api"
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "ide")
    workspace.refresh_from_db()
    with (
        stubbed_broker() as broker,
        django_capture_on_commit_callbacks(execute=True),
    ):
        finish_job(workspace.current_job, {"ide": OK})
    assert not broker.publish.called  # nothing is queued to wait for Traefik
    workspace.refresh_from_db()
    assert workspace.status == S.PROVISIONING and workspace.route_wanted
    return workspace


def test_the_beat_tick_runs_the_workspace_once_traefik_lists_its_router(provisioned, monkeypatch):
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: {"ws-other"})
    assert tasks.tick() == {"started": 0, "running": 0, "unrouted": 0, "route_failed": 0}
    provisioned.refresh_from_db()
    assert provisioned.status == S.PROVISIONING
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: {"ws-ide"})
    assert tasks.tick()["running"] == 1
    provisioned.refresh_from_db()
    assert provisioned.status == S.RUNNING


def test_the_beat_tick_waits_while_traefik_does_not_answer(provisioned, monkeypatch):
    def down():
        raise TraefikUnavailable("Traefik's API did not answer")

    monkeypatch.setattr("portal.workspaces.routing.live_routers", down)
    assert tasks.tick()["running"] == 0
    provisioned.refresh_from_db()
    assert provisioned.status == S.PROVISIONING


def test_a_route_never_listed_by_the_timeout_fails_the_create_and_rolls_it_back(
    provisioned, settings, monkeypatch
):
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: set())
    settings.WORKSPACE_ROUTE_TIMEOUT = 0
    assert tasks.tick()["route_failed"] == 1
    provisioned.refresh_from_db()
    assert provisioned.status == S.FAILED and "did not show the route" in provisioned.status_reason
    rollback = Job.objects.get(action=actions.ROLLBACK)
    assert provisioned.current_job == rollback
    finish_job(rollback, {"ide": {"ok": True}})
    provisioned.refresh_from_db()
    assert provisioned.port is None and not provisioned.on_node
    assert "rolled back" in provisioned.status_reason


def test_without_traefiks_api_the_result_handler_confirms_at_once(
    member, ws_node, settings, django_capture_on_commit_callbacks
):
    settings.TRAEFIK_API_URL = ""
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "ide")
    workspace.refresh_from_db()
    finish_job(workspace.current_job, {"ide": OK})
    workspace.refresh_from_db()
    assert workspace.status == S.RUNNING
