"""A workspace whose node cannot be reached is always deletable (issue #19, broken 1).

Real job runs of the product playbooks: an unreachable node is 127.0.0.1 port 1 (nothing
listens), as in tests/labs and tests/jobs.
"""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from portal.accounts.choices import DEFAULT_PLANS, PlanTier
from portal.accounts.models import Plan
from portal.core.errors import PortalError
from portal.jobs import actions as jobs
from portal.jobs.models import Job
from portal.nodes.choices import Connection, NodePurpose
from portal.workspaces import actions
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import AdminFactory, MembershipFactory, NodeFactory
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def product_playbooks(settings, tmp_path):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.WORKSPACE_RETRY_MAX_ATTEMPTS = 2
    settings.WORKSPACE_RETRY_BASE_SECONDS = 0.1
    settings.WORKSPACE_RETRY_MAX_SECONDS = 0.2
    settings.CODE_SERVER_PACKAGE = ""  # the default: npm; reaches Ansible as ""
    settings.TRAEFIK_API_URL = ""


@pytest.fixture
def member(broker):
    # An earlier transactional test may have flushed the plans the data migration made.
    team, _ = Plan.objects.get_or_create(
        tier=PlanTier.TEAM, defaults={"name": "Team", **DEFAULT_PLANS[PlanTier.TEAM]}
    )
    membership = MembershipFactory(customer__plan=team)
    return membership.user, membership.customer


@pytest.fixture
def down_node(db):
    return NodeFactory(
        name="ws-down", address="127.0.0.1", ssh_port=1, purpose=NodePurpose.WORKSPACE_HOST
    )


def run_jobs(timeout: float = 60) -> None:
    """Act as the worker until no job is waiting, retries (not_before) included."""

    def none_waiting() -> bool:
        waiting = list(Job.objects.filter(status__in=["pending", "dispatched"]).order_by("id"))
        for job in waiting:
            if not job.not_before or job.not_before <= timezone.now():
                jobs.execute(job.pk, job.signature, worker="test")
        return not waiting

    wait_for(none_waiting, timeout, 0.05, "the waiting jobs (and their retries) to run")


def on_node(member, node, name="ide") -> Workspace:
    """A workspace that got onto its node (its create succeeded)."""
    workspace = actions.do_create(member[1], member[0], name, node=node)
    Job.objects.filter(pk=workspace.current_job_id).delete()
    Workspace.objects.filter(pk=workspace.pk).update(
        status=S.RUNNING, on_node=True, current_job=None
    )
    workspace.refresh_from_db()
    return workspace


def test_a_create_that_never_reached_its_node_fails_and_is_deleted_without_a_job(member, down_node):
    workspace = actions.do_create(member[1], member[0], "ide", node=down_node)
    run_jobs()
    workspace.refresh_from_db()
    assert workspace.status == S.FAILED
    assert "node ws-down unreachable" in workspace.status_reason
    assert "nothing was done on it" in workspace.status_reason
    assert not workspace.on_node and workspace.port is None  # the port is free again
    assert not Job.objects.filter(action=actions.ROLLBACK).exists()  # nothing to undo
    assert Job.objects.filter(action=actions.CREATE).count() == 2  # retried once
    actions.do_delete(workspace)
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED and workspace.deleted_at
    assert not Job.objects.filter(action=actions.DELETE).exists()
    assert workspace.history.filter(to_status=S.DELETED).exists()


def test_a_delete_that_cannot_reach_the_node_says_so_and_can_be_retried(member, down_node):
    workspace = on_node(member, down_node)
    actions.do_delete(workspace)
    first = Workspace.objects.get(pk=workspace.pk).current_job
    jobs.execute(first.pk, first.signature, worker="test")  # attempt 1: unreachable
    workspace.refresh_from_db()
    assert workspace.status == S.DELETING
    assert workspace.status_reason.startswith(
        "node ws-down unreachable: the delete will be retried"
    )
    run_jobs()
    workspace.refresh_from_db()
    assert workspace.status == S.FAILED and workspace.current_job is None
    assert workspace.status_reason.startswith("delete failed: node ws-down unreachable")
    assert "delete again to retry" in workspace.status_reason
    assert "admin can force" in workspace.status_reason
    assert workspace.port is not None and workspace.on_node  # still held: not known clean
    actions.do_delete(workspace)  # the user retries
    workspace.refresh_from_db()
    assert workspace.status == S.DELETING and workspace.current_job.action == actions.DELETE


def test_an_admin_forces_the_delete_of_a_workspace_on_an_unreachable_node(member, down_node):
    workspace = on_node(member, down_node)
    port = workspace.port
    actions.do_delete(workspace)
    job = Workspace.objects.get(pk=workspace.pk).current_job
    jobs.execute(job.pk, job.signature, worker="test")  # waiting for a retry
    with pytest.raises(PortalError) as refused:
        actions.do_force_delete(workspace, by=member[0])
    assert refused.value.code == "permission_denied"
    admin = AdminFactory()
    actions.do_force_delete(workspace, by=admin)
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED and workspace.port is None
    assert workspace.current_job is None and workspace.deleted_at
    event = workspace.history.first()
    assert event.to_status == S.DELETED and event.by == admin
    assert "forced" in event.message and "leftovers" in event.message
    assert f"ws-down:{port}" in event.message
    run_jobs()  # the waiting retry is canceled and changes nothing
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED
    assert not Job.objects.filter(status__in=["pending", "dispatched", "running"]).exists()
    # the port is free for the next workspace
    assert actions.do_create(member[1], member[0], "next", node=down_node).port == port


def test_the_rollback_of_a_failed_create_passes_the_package_preflight(member):
    """The rollback (workspace_delete.yml) needs no install package: an empty one (npm, the
    default) reaches Ansible as "" and is not even checked. Runs the real playbook on this
    machine (connection local): it stops at the first systemctl where there is no systemd,
    after the preflight."""
    node = NodeFactory(
        name="ws-local",
        connection=Connection.LOCAL,
        credential=None,
        purpose=NodePurpose.WORKSPACE_HOST,
    )
    workspace = on_node(member, node, name="preflight-probe")
    Workspace.objects.filter(pk=workspace.pk).update(status=S.FAILED)
    workspace.refresh_from_db()
    job = actions.launch_delete([workspace], action=actions.ROLLBACK)[0]
    assert job.extra_vars["code_server_package"] == ""
    jobs.execute(job.pk, job.signature, worker="test")
    job.refresh_from_db()
    preflight = job.events.filter(
        task="Ensure the workspace root and the items are plain values", host="ws-local"
    )
    assert preflight.exists() and not preflight.filter(failed=True).exists()
    assert not job.events.filter(failed=True, stdout__contains="refusing").exists()
    workspace.refresh_from_db()
    assert "refusing" not in workspace.status_reason
