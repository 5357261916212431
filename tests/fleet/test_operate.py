"""Restart and rebuild of a VM (portal/fleet/actions/operate.py and its API): the rows and
jobs they create, the 409s, tenancy, and what each job's end and each waiting step do."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from portal.core.errors import Conflict, PortalError
from portal.core.status import expire_statuses
from portal.fleet import selectors
from portal.fleet.actions import operate, operate_steps
from portal.fleet.choices import OperationStatus as O
from portal.fleet.models import VM, VMOperation
from portal.jobs import actions as jobs
from portal.jobs.choices import JobStatus
from portal.jobs.models import JobEvent
from portal.monitoring.actions import INSTALL_AGENT
from portal.monitoring.models import NodeLiveness
from tests.fleet.api_helpers import customer, member_of, vm

pytestmark = pytest.mark.django_db

AGENT = {"token": "the-agent-token-of-this-vm"}  # an agent installed: a liveness row
TEST_HOST = {"power_driver": "test-host", "power_options": {"command": ["true"]}, **AGENT}


@pytest.fixture(autouse=True)
def _playbooks(settings):
    from django.conf import settings as django_settings

    settings.PLAYBOOKS_DIR = django_settings.BASE_DIR / "playbooks"
    settings.MONITORING_PORTAL_URL = "http://portal.example:8000"


def end(job, status=JobStatus.SUCCESSFUL, reason=""):
    """The job ran and ended so: recorded and handed to its owner as a worker does."""
    job.refresh_from_db()
    assert job.claim("test")
    assert job.finish(status, rc=0 if status == JobStatus.SUCCESSFUL else 2, reason=reason)
    jobs.finalize(job)


def beat(row, *, uptime, seen=None):
    """The VM's agent reported ``uptime`` seconds, received at ``seen`` (now)."""
    NodeLiveness.objects.update_or_create(
        node_id=row.pk,
        defaults={"status": "up", "last_seen_at": seen or timezone.now(), "uptime_seconds": uptime},
    )


def operation_of(job) -> VMOperation:
    return VMOperation.objects.get(job=job)


# --- restart ------------------------------------------------------------------------------


def test_restart_creates_the_job_and_the_operation(broker, django_capture_on_commit_callbacks):
    row = vm(customer(), **AGENT)
    with django_capture_on_commit_callbacks(execute=True):
        job = operate.restart_vm(row)
    assert (job.action, job.playbook, job.status) == (
        "fleet.restart",
        "fleet_restart.yml",
        "dispatched",
    )
    assert list(job.nodes.all()) == [row.node] and job.customer == row.customer
    assert job.target == row and job.extra_vars["fleet_restart_reboot_timeout"] > 0
    assert job.idle_timeout > job.extra_vars["fleet_restart_reboot_timeout"]
    operation = operation_of(job)
    assert (operation.kind, operation.status, operation.vm) == ("restart", O.RUNNING, row)
    row.refresh_from_db()
    assert (row.last_action, row.last_action_kind) == (job, "restart")
    assert [name for name, _ in broker.published()] == ["jobs.run"]


def test_a_second_action_is_refused_naming_the_running_job(broker):
    row = vm(customer(), **TEST_HOST)
    job = operate.restart_vm(row)
    for action in (operate.restart_vm, operate.rebuild_vm):
        with pytest.raises(Conflict) as refused:
            action(row)
        assert refused.value.code == "busy" and f"job {job.pk}" in refused.value.message


def test_a_vm_without_agent_cannot_be_restarted(broker):
    with pytest.raises(Conflict) as refused:
        operate.restart_vm(vm(customer()))
    assert (refused.value.code, refused.value.field) == ("no_agent", "agent")
    assert not VMOperation.objects.exists()


def test_any_active_job_on_the_node_makes_the_vm_busy(broker):
    from portal.monitoring.actions import do_install_agent

    row = vm(customer(), **AGENT)
    install = do_install_agent(row.node)
    with pytest.raises(Conflict) as refused:
        operate.restart_vm(row)
    assert refused.value.code == "busy"
    assert f"job {install.pk} ({INSTALL_AGENT})" in refused.value.message


def reported_boot(job, kind, booted):
    """The job's set_stats as the playbook reports them (its stats event)."""
    JobEvent.objects.create(
        job=job,
        counter=99,
        event="playbook_on_stats",
        created=timezone.now(),
        event_data={
            "artifact_data": {f"fleet_{kind}": {job.nodes.get().name: {"booted_at": booted}}}
        },
    )


def test_restart_waits_for_a_heartbeat_after_the_reboot(broker):
    row = vm(customer(), last_action_failed=True, **AGENT)  # an earlier action failed
    beat(row, uptime=86400)
    job = operate.restart_vm(row)
    boot = timezone.now().timestamp()
    reported_boot(job, "restart", boot)
    beat(row, uptime=86400)  # the old boot, before the reboot: does not count
    end(job)
    operation = operation_of(job)
    assert operation.status == O.AWAITING_HEARTBEAT and operation.status_expires
    assert operation.booted_at.timestamp() == pytest.approx(boot)
    operate.advance_operations()
    assert operation_of(job).status == O.AWAITING_HEARTBEAT
    beat(row, uptime=3)
    operate.advance_operations()
    operation = operation_of(job)
    assert operation.status == O.SUCCEEDED and operation.finished_at
    assert "heartbeat from the new boot" in operation.reason
    row = VM.objects.get(pk=row.pk)
    assert (row.last_action_id, row.last_action_kind, row.last_action_failed) == (
        job.pk,
        "restart",
        False,
    )
    operate.restart_vm(row)  # idle again


def test_a_failed_restart_job_fails_the_operation_and_the_vm_is_error(broker):
    row = vm(customer(), liveness="up", **AGENT)
    job = operate.restart_vm(row)
    end(job, JobStatus.FAILED, reason="ansible-playbook exited with rc 2")
    operation = operation_of(job)
    assert operation.status == O.FAILED and f"job {job.pk} failed" in operation.reason
    assert selectors.vm_status(VM.objects.get(pk=row.pk)) == "error"


def test_no_heartbeat_in_time_fails_the_restart(broker, settings):
    row = vm(customer(), **AGENT)
    job = operate.restart_vm(row)
    end(job)
    VMOperation.objects.filter(job=job).update(status_expires=timezone.now() - timedelta(1))
    expire_statuses()
    operation = operation_of(job)
    assert operation.status == O.FAILED and "timed out" in operation.reason
    assert VM.objects.get(pk=row.pk).last_action_failed


# --- rebuild ------------------------------------------------------------------------------


def test_a_vm_without_power_driver_cannot_be_rebuilt(broker):
    with pytest.raises(Conflict) as refused:
        operate.rebuild_vm(vm(customer()))
    assert (refused.value.code, refused.value.field) == ("no_power_driver", "power_driver")
    assert not VMOperation.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"power_driver": "nonsense"},
        {"power_driver": "test-host", "power_options": {}},
        {"power_driver": "test-host", "power_options": {"command": "reboot"}},
    ],
)
def test_a_power_driver_that_cannot_be_called_is_a_400(broker, fields):
    with pytest.raises(PortalError) as refused:
        operate.rebuild_vm(vm(customer(), **fields))
    assert refused.value.status_code == 400 and refused.value.field.startswith("power_")


def test_rebuild_holds_its_job_and_reimages_first(broker, django_capture_on_commit_callbacks):
    row = vm(customer(), **TEST_HOST)
    with django_capture_on_commit_callbacks(execute=True):
        job = operate.rebuild_vm(row)
    assert (job.action, job.status) == ("fleet.rebuild", "pending")
    assert job.not_before > timezone.now() + timedelta(minutes=10)
    operation = operation_of(job)
    assert (operation.kind, operation.status) == ("rebuild", O.REIMAGING)
    assert broker.published() == [("fleet.reimage_vm", [operation.pk])]
    assert jobs.sweep_pending(older_than=timedelta(0)) == 0  # the sweep leaves it held


def test_a_failed_reimage_fails_the_rebuild_and_cancels_its_job(broker):
    row = vm(customer(), power_driver="test-host", power_options={"command": ["false"]})
    job = operate.rebuild_vm(row)
    operation = operate.do_reimage(operation_of(job).pk)
    assert operation.status == O.FAILED and "re-image (test-host) failed" in operation.reason
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED and "re-image" in job.reason
    assert VM.objects.get(pk=row.pk).last_action_failed


def test_rebuild_steps_to_the_heartbeat(broker, django_capture_on_commit_callbacks):
    row = vm(customer(), **TEST_HOST)
    beat(row, uptime=86400)
    job = operate.rebuild_vm(row)
    with mock.patch.object(operate_steps, "_ssh_answers", return_value=False):
        operation = operate.do_reimage(operation_of(job).pk)
    assert operation.status == O.BOOTING
    with (
        mock.patch.object(operate_steps, "_ssh_answers", return_value=True),
        mock.patch.object(operate_steps.node_actions, "do_accept_host_key") as accept,
        django_capture_on_commit_callbacks(execute=True),
    ):
        operate.advance_operations()
    accept.assert_called_once()
    job.refresh_from_db()
    assert operation_of(job).status == O.RUNNING
    assert job.not_before is None and job.status == JobStatus.DISPATCHED

    end(job)  # the new image answered: the agent goes on again, at its old interval
    operation = operation_of(job)
    assert operation.status == O.INSTALLING_AGENT
    agent = operation.agent_job
    assert agent.action == INSTALL_AGENT and list(agent.nodes.all()) == [row.node]
    assert agent.extra_vars["node_agent_interval"] == 30
    operate.advance_operations()
    assert operation_of(job).status == O.INSTALLING_AGENT  # its job still runs
    end(agent)
    operate.advance_operations()
    assert operation_of(job).status == O.AWAITING_HEARTBEAT
    beat(row, uptime=5)
    operate.advance_operations()
    assert operation_of(job).status == O.SUCCEEDED
    same = VM.objects.get(pk=row.pk)
    assert (same.node_id, same.customer_id, same.node.address) == (
        row.node_id,
        row.customer_id,
        row.node.address,
    )
    assert (same.last_action_id, same.last_action_kind, same.last_action_failed) == (
        job.pk,
        "rebuild",
        False,
    )


def test_a_failed_agent_install_fails_the_rebuild(broker):
    row = vm(customer(), **TEST_HOST)
    job = operate.rebuild_vm(row)
    VMOperation.objects.filter(job=job).update(status=O.RUNNING)
    end(job)
    agent = operation_of(job).agent_job
    end(agent, JobStatus.FAILED, reason="ansible-playbook exited with rc 2")
    operate.advance_operations()
    operation = operation_of(job)
    assert (
        operation.status == O.FAILED and f"agent install job {agent.pk} failed" in operation.reason
    )
    assert VM.objects.get(pk=row.pk).last_action_failed


def test_the_boot_wait_times_out(broker):
    row = vm(customer(), **TEST_HOST)
    job = operate.rebuild_vm(row)
    with mock.patch.object(operate_steps, "_ssh_answers", return_value=False):
        operate.do_reimage(operation_of(job).pk)
    VMOperation.objects.filter(job=job).update(status_expires=timezone.now() - timedelta(1))
    expire_statuses()
    assert operation_of(job).status == O.FAILED
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert VM.objects.get(pk=row.pk).last_action_failed


# --- the API ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["restart", "rebuild"])
def test_owner_may_act_on_their_vm(user_api, broker, action):
    mine = customer()
    row = vm(mine, **TEST_HOST)
    answer = user_api(member_of(mine, "owner")).post(f"/api/vms/{row.pk}/{action}")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    job = VMOperation.objects.get(vm=row).job
    assert (body["vm_id"], body["action"], body["job"]) == (row.pk, action, job.pk)
    assert body["job_url"] == f"/api/jobs/{job.pk}/" and body["operation"]["kind"] == action
    again = user_api(member_of(mine, "owner")).post(f"/api/vms/{row.pk}/{action}/")
    assert again.status_code == 409 and again.json()["code"] == "busy"
    assert f"job {job.pk}" in again.json()["message"]


def test_members_may_not_act_and_others_see_no_vm(user_api, broker):
    mine, theirs = customer(), customer()
    row = vm(mine, **TEST_HOST)
    member = user_api(member_of(mine, "member"))
    assert member.post(f"/api/vms/{row.pk}/restart").status_code == 403
    assert member.get(f"/api/vms/{row.pk}/operations").status_code == 200
    stranger = user_api(member_of(theirs, "owner"))
    for path in ("restart", "rebuild", "operations"):
        method = stranger.get if path == "operations" else stranger.post
        assert method(f"/api/vms/{row.pk}/{path}").status_code == 404
    assert not VMOperation.objects.exists()


def test_admin_rebuild_without_driver_is_409_and_operations_list(admin_api, broker):
    row = vm(customer(), **AGENT)
    refused = admin_api.post(f"/api/vms/{row.pk}/rebuild")
    assert refused.status_code == 409 and refused.json()["code"] == "no_power_driver"
    assert admin_api.post(f"/api/vms/{row.pk}/restart").status_code == 202
    listed = admin_api.get(f"/api/vms/{row.pk}/operations").json()
    assert [(o["kind"], o["status"]) for o in listed] == [("restart", "running")]
    assert admin_api.post("/api/vms/999999/restart").status_code == 404


def test_the_vm_admin_restarts_and_says_why_not(admin_client, broker):
    row = vm(customer(), **AGENT)
    changelist = "/admin/fleet/vm/"
    answer = admin_client.post(
        changelist, {"action": "restart", "_selected_action": [row.pk]}, follow=True
    )
    job = VMOperation.objects.get(vm=row).job
    assert answer.status_code == 200 and f"job {job.pk}" in answer.content.decode()
    again = admin_client.post(
        changelist, {"action": "rebuild", "_selected_action": [row.pk]}, follow=True
    )
    assert "is busy" in again.content.decode()
    page = admin_client.get(f"/admin/fleet/vm/{row.pk}/change/")
    assert page.status_code == 200 and "restart" in page.content.decode()


def test_a_held_rebuild_job_canceled_by_someone_fails_the_rebuild(broker):
    row = vm(customer(), **TEST_HOST)
    job = operate.rebuild_vm(row)
    jobs.cancel(job, by="an admin")
    operation = operation_of(job)
    assert operation.status == O.FAILED and f"job {job.pk} canceled before it ran" in (
        operation.reason
    )
    assert operate.do_reimage(operation.pk).status == O.FAILED  # the task finds it ended
    assert VM.objects.get(pk=row.pk).last_action_failed
