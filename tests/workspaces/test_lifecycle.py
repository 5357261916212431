"""After create: results of each job, rollback, routes, operations and delete."""

import pytest

from portal.core.errors import Conflict
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.workspaces import actions
from portal.workspaces.actions import routes
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")

OK = {
    "ok": True,
    "quota_backend": "btrfs",
    "quota_used_bytes": 16384,
    "active_state": "active",
    "healthy": True,
}


@pytest.fixture
def provisioning(member, ws_node, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workspace = actions.do_create(member[1], member[0], "ide")
    workspace.refresh_from_db()
    return workspace


@pytest.fixture
def running(provisioning):
    finish_job(provisioning.current_job, {"ide": OK})
    provisioning.refresh_from_db()
    assert provisioning.status == S.RUNNING
    return provisioning


def last_job(action) -> Job:
    return Job.objects.filter(action=action).order_by("-id").first()


def test_a_provisioned_workspace_runs_once_its_route_is_confirmed(
    provisioning, settings, monkeypatch
):
    settings.TRAEFIK_API_URL = "http://127.0.0.1:1/api"
    finish_job(provisioning.current_job, {"ide": OK})
    provisioning.refresh_from_db()
    assert provisioning.status == S.PROVISIONING and provisioning.route_wanted
    assert provisioning.current_job is None
    assert (provisioning.quota_backend, provisioning.quota_used_bytes) == ("btrfs", 16384)
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: set())
    routes.confirm_routes()
    provisioning.refresh_from_db()
    assert provisioning.status == S.PROVISIONING  # not yet in Traefik
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: {"ws-ide"})
    assert routes.confirm_routes()["running"] == 1
    provisioning.refresh_from_db()
    assert provisioning.status == S.RUNNING and "running at" in provisioning.status_reason


def test_a_route_traefik_never_shows_fails_the_workspace_and_rolls_it_back(
    provisioning, settings, monkeypatch
):
    settings.TRAEFIK_API_URL = "http://127.0.0.1:1/api"
    settings.WORKSPACE_ROUTE_TIMEOUT = 0
    finish_job(provisioning.current_job, {"ide": OK})
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: set())
    assert routes.confirm_routes()["route_failed"] == 1
    provisioning.refresh_from_db()
    assert (
        provisioning.status == S.FAILED and "did not show the route" in provisioning.status_reason
    )
    rollback = last_job(actions.ROLLBACK)
    assert rollback.playbook == "workspace_delete.yml" and provisioning.current_job == rollback


def test_an_item_that_failed_was_rolled_back_by_the_playbook_and_frees_its_port(provisioning):
    finish_job(
        provisioning.current_job,
        {"ide": {"ok": False, "step": "quota", "message": "not a btrfs filesystem"}},
    )
    provisioning.refresh_from_db()
    assert provisioning.status == S.FAILED
    assert "failed at quota: not a btrfs filesystem" in provisioning.status_reason
    assert provisioning.port is None and not provisioning.on_node
    assert not Job.objects.filter(action=actions.ROLLBACK).exists()
    actions.do_delete(provisioning)  # nothing on the node: deleted without a job
    provisioning.refresh_from_db()
    assert provisioning.status == S.DELETED


@pytest.mark.parametrize(
    "status", [JobStatus.FAILED, JobStatus.LOST, JobStatus.TIMEOUT, JobStatus.CANCELED]
)
def test_a_run_that_ended_without_a_result_is_rolled_back(provisioning, status):
    finish_job(provisioning.current_job, None, status=status, reason="worker vanished")
    provisioning.refresh_from_db()
    assert provisioning.status == S.FAILED and "rolling back" in provisioning.status_reason
    rollback = provisioning.current_job
    assert rollback.action == actions.ROLLBACK
    assert rollback.extra_vars["workspace_items"][0]["slug"] == "ide"
    assert provisioning.port == 8001  # held until the rollback confirms the node is clean
    finish_job(rollback, {"ide": {"ok": True}})
    provisioning.refresh_from_db()
    assert provisioning.port is None and not provisioning.on_node
    assert provisioning.status == S.FAILED and "rolled back" in provisioning.status_reason


def test_an_unreachable_node_is_retried_then_failed_with_the_reason(provisioning, settings):
    settings.WORKSPACE_RETRY_MAX_ATTEMPTS = 2
    job = provisioning.current_job
    finish_job(
        job,
        None,
        status=JobStatus.FAILED,
        reason="host unreachable",
        host_summary={"ws-node-1": {"unreachable": 1}},
    )
    provisioning.refresh_from_db()
    retry = provisioning.current_job
    assert retry.retry_of == job and retry.not_before is not None
    assert (
        provisioning.status == S.PROVISIONING and "waiting for node" in provisioning.status_reason
    )
    finish_job(
        retry,
        None,
        status=JobStatus.FAILED,
        reason="host unreachable",
        host_summary={"ws-node-1": {"unreachable": 1}},
    )
    provisioning.refresh_from_db()
    assert provisioning.status == S.FAILED and "host unreachable" in provisioning.status_reason


def test_delete_during_provisioning_is_refused(provisioning):
    with pytest.raises(Conflict) as refused:
        actions.do_delete(provisioning)
    assert refused.value.code == "busy"


def test_delete_unpublishes_the_route_then_removes_the_workspace(running):
    actions.do_delete(running)
    running.refresh_from_db()
    # Without a Traefik API to ask, the delete job starts at once.
    assert running.status == S.DELETING and not running.route_wanted
    job = running.current_job
    assert job.action == actions.DELETE and job.playbook == "workspace_delete.yml"
    with pytest.raises(Conflict):
        actions.do_delete(running)
    finish_job(job, {"ide": {"ok": True}})
    running.refresh_from_db()
    assert running.status == S.DELETED and running.port is None and running.deleted_at


def test_delete_waits_for_traefik_to_drop_the_route(running, settings, monkeypatch):
    settings.TRAEFIK_API_URL = "http://127.0.0.1:1/api"
    actions.do_delete(running)
    running.refresh_from_db()
    assert running.status == S.DELETING and running.current_job is None
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: {"ws-ide"})
    routes.confirm_routes()
    assert Workspace.objects.get(pk=running.pk).current_job is None
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: set())
    assert routes.confirm_routes()["unrouted"] == 1
    assert Workspace.objects.get(pk=running.pk).current_job.action == actions.DELETE


def test_a_failed_delete_leaves_the_workspace_failed_and_deletable_again(running):
    actions.do_delete(running)
    finish_job(
        Workspace.objects.get(pk=running.pk).current_job,
        None,
        status=JobStatus.FAILED,
        reason="boom",
    )
    running.refresh_from_db()
    assert running.status == S.FAILED and "delete failed" in running.status_reason
    assert running.port == 8001 and running.on_node
    actions.do_delete(running)
    running.refresh_from_db()
    assert running.status == S.DELETING


def test_stop_then_start(running):
    actions.do_operate([running], "stop")
    running.refresh_from_db()
    stop = running.current_job
    assert stop.extra_vars["workspace_control_action"] == "stop" and not running.route_wanted
    with pytest.raises(Conflict) as busy:  # a double click makes one job
        actions.do_operate([running], "stop")
    assert busy.value.code == "busy"
    finish_job(stop, {"ide": {"ok": True, "active_state": "inactive", "healthy": False}})
    running.refresh_from_db()
    assert running.status == S.STOPPED and running.health["active_state"] == "inactive"
    with pytest.raises(Conflict) as refused:
        actions.do_operate([running], "stop")
    assert refused.value.code == "invalid_state"
    actions.do_operate([running], "start")
    running.refresh_from_db()
    finish_job(running.current_job, {"ide": OK})
    running.refresh_from_db()
    assert running.status == S.RUNNING and running.route_wanted


def test_logs_and_status_are_stored(running):
    actions.do_operate([running], "logs")
    running.refresh_from_db()
    finish_job(running.current_job, {"ide": {"ok": True, "logs": "line 1\nline 2"}})
    running.refresh_from_db()
    assert running.recent_logs == "line 1\nline 2" and running.logs_fetched_at
    actions.do_operate([running], "status")
    running.refresh_from_db()
    finish_job(
        running.current_job, {"ide": {"ok": True, "active_state": "failed", "healthy": False}}
    )
    running.refresh_from_db()
    assert running.health["active_state"] == "failed" and running.health["healthy"] is False
    assert (
        "not answering" in running.status_reason
        or running.history.filter(message__contains="not answering").exists()
    )


def test_a_plan_change_resizes_every_workspace_in_one_run(running, member):
    from tests.factories import plan

    jobs = actions.do_change_plan(member[1], plan("enterprise"))
    running.refresh_from_db()
    assert len(jobs) == 1 and jobs[0].action == actions.RESIZE
    assert running.disk_quota_gb == 250 and running.current_job == jobs[0]
    item = jobs[0].extra_vars["workspace_items"][0]
    assert item["quota_gb"] == 250 and item["memory_max_mb"] == 8192
    finish_job(jobs[0], {"ide": {"ok": True, "quota_backend": "btrfs"}})
    running.refresh_from_db()
    assert running.current_job is None and "limits applied" in running.history.first().message


def test_a_plan_with_room_for_fewer_workspaces_is_refused(running, member):
    from tests.factories import plan

    starter = plan("starter")
    starter.workspace_limit = 0
    starter.save()
    with pytest.raises(Conflict) as refused:
        actions.do_change_plan(member[1], starter)
    assert refused.value.code == "plan_limit"


def test_the_tick_starts_runs_that_were_never_launched(member, ws_node):
    workspace = actions.do_create(member[1], member[0], "orphan")  # on_commit never ran
    assert workspace.status == S.PENDING
    assert actions.tick()["started"] == 1
    workspace.refresh_from_db()
    assert workspace.status == S.PROVISIONING


def test_delete_on_a_disabled_node_is_refused_and_changes_nothing(running, ws_node):
    from portal.core.errors import PortalError

    ws_node.enabled = False
    ws_node.save()
    with pytest.raises(PortalError) as refused:
        actions.do_delete(running)
    assert "disabled" in refused.value.message
    running.refresh_from_db()
    assert running.status == S.RUNNING and running.route_wanted


def test_a_delete_whose_node_was_disabled_while_unrouting_fails_clearly(
    running, ws_node, settings, monkeypatch
):
    settings.TRAEFIK_API_URL = "http://127.0.0.1:1/api"
    actions.do_delete(running)
    ws_node.enabled = False
    ws_node.save()
    monkeypatch.setattr("portal.workspaces.routing.live_routers", lambda: set())
    routes.confirm_routes()
    running.refresh_from_db()
    assert running.status == S.FAILED and "delete could not start" in running.status_reason
    assert routes.confirm_routes() == {"running": 0, "unrouted": 0, "route_failed": 0}


def test_an_item_whose_rollback_failed_keeps_its_port_until_deleted(provisioning):
    finish_job(
        provisioning.current_job,
        {
            "ide": {
                "ok": False,
                "step": "health",
                "message": "no answer; rollback failed: userdel: busy",
            }
        },
    )
    provisioning.refresh_from_db()
    assert provisioning.status == S.FAILED and provisioning.on_node
    assert provisioning.port == 8001 and "delete the workspace" in provisioning.status_reason
    actions.do_delete(provisioning)
    provisioning.refresh_from_db()
    assert provisioning.status == S.DELETING and provisioning.current_job.action == actions.DELETE
