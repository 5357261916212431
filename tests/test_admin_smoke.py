"""Every admin page of every registered model loads (changelist, add, change, search)."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from portal.accounts.models import Invitation
from portal.jobs.models import Job, JobEvent
from portal.labs.models import Lab, LabSession
from portal.nodes.models import NodeGroup
from portal.workspaces.models import CapacityRefusal, Workspace, WorkspaceEvent
from tests.factories import CustomerFactory, MembershipFactory, NodeFactory, UserFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_data(admin_client):
    MembershipFactory(customer=CustomerFactory())
    node = NodeFactory(group=NodeGroup.objects.create(name="site-a"))
    job = Job.objects.create(
        playbook="ping.yml",
        action="jobs.adhoc",
        queue="default",
        timeout=60,
        idle_timeout=60,
        status="failed",
        rc=2,
    )
    job.nodes.add(node)
    JobEvent.objects.create(
        job=job,
        counter=1,
        event="runner_on_failed",
        host=node.name,
        task="Ping",
        failed=True,
        stdout="fatal: [x]",
        created=job.created_at,
    )
    lab = Lab.objects.create(
        name="Intro", server=node, provision_script_path="/p.sh", cleanup_script_path="/c.sh"
    )
    LabSession.objects.create(
        user=UserFactory(),
        lab=lab,
        namespace="user-1-abcd",
        access_expiry=timezone.now() + timedelta(hours=1),
        token_hash="x",
    )
    membership = MembershipFactory()
    workspace = Workspace.objects.create(
        customer=membership.customer,
        owner=membership.user,
        name="IDE",
        slug="ide",
        node=node,
        port=8001,
        linux_username="ws-ide",
        password="x" * 24,
        disk_quota_gb=10,
        cpu_limit=1,
        memory_limit_mb=2048,
        status="running",
    )
    WorkspaceEvent.objects.create(workspace=workspace, to_status="running", job=job)
    CapacityRefusal.objects.create(
        code="no_capacity",
        scope="site-a",
        message="no free port on site-a",
        customer=membership.customer,
    )
    Group.objects.get_or_create(name="operators")
    Invitation.objects.create(
        customer=membership.customer,
        email="invited@example.com",
        token_hash="0" * 64,
        expires_at=timezone.now() + timedelta(days=1),
        invited_by=membership.user,
    )
    from tests.clusters.conftest import make_cluster, start

    with stubbed_broker():
        start(make_cluster(count=1))
    from portal.fleet.models import VM, VMOperation

    vm = VM.objects.create(node=NodeFactory(), customer=CustomerFactory())
    VMOperation.objects.create(vm=vm, kind="restart", status="running", job=job)
    from portal.fleet.models import Rollout, RolloutTarget, Update

    rollout = Rollout.objects.create(update=Update.objects.create(version="2.0.0"))
    RolloutTarget.objects.create(rollout=rollout, vm=vm, wave=1)
    return admin_client


PORTAL_APPS = {
    "accounts",
    "nodes",
    "jobs",
    "workspaces",
    "labs",
    "fleet",
    "catalogue",
    "clusters",
    "auth",
}


def _registered():
    return [(m._meta.app_label, m._meta.model_name) for m in admin.site._registry]


def _portal_models():
    return [(app, model) for app, model in _registered() if app in PORTAL_APPS]


def _model_admin(app, model):
    return next(
        model_admin
        for model_class, model_admin in admin.site._registry.items()
        if (model_class._meta.app_label, model_class._meta.model_name) == (app, model)
    )


@pytest.mark.parametrize(("app", "model"), _registered())
def test_changelist_and_add_pages_load(admin_client_with_data, rf, app, model):
    changelist = reverse(f"admin:{app}_{model}_changelist")
    assert admin_client_with_data.get(changelist).status_code == 200
    assert admin_client_with_data.get(changelist, {"q": "x"}).status_code == 200
    # A superuser gets every page the admin offers: the add page answers 200 unless the
    # model's admin offers no add page at all (rows made by the portal: jobs, events...),
    # and then it is refused (403) and not linked from the changelist.
    request = rf.get(changelist)
    request.user = admin_client_with_data.get(changelist).wsgi_request.user
    assert request.user.is_superuser
    add_url = reverse(f"admin:{app}_{model}_add")
    add = admin_client_with_data.get(add_url)
    if _model_admin(app, model).has_add_permission(request):
        assert add.status_code == 200
    else:
        assert add.status_code == 403
        assert add_url not in admin_client_with_data.get(changelist).content.decode()


@pytest.mark.parametrize(("app", "model"), _portal_models())
def test_change_page_loads(admin_client_with_data, app, model):
    model_class = next(m for m in admin.site._registry if m._meta.model_name == model)
    obj = model_class._default_manager.first()
    assert obj is not None, f"the fixture data has no {model} row"
    url = reverse(f"admin:{app}_{model}_change", args=[obj.pk])
    assert admin_client_with_data.get(url).status_code == 200


def test_credential_change_page_never_shows_the_secret(admin_client_with_data):
    node = NodeFactory()
    url = reverse("admin:nodes_credential_change", args=[node.credential.pk])
    page = admin_client_with_data.get(url).content.decode()
    assert "PRIVATE KEY" not in page and node.credential.hint in page


def test_admin_duplicate_customer_email_is_a_form_error(admin_client):
    CustomerFactory(email="dup@example.com")
    from portal.accounts.models import Plan

    response = admin_client.post(
        reverse("admin:accounts_customer_add"),
        {
            "name": "Dup",
            "email": "DUP@example.com",
            "plan": Plan.objects.first().pk,
            "billing_status": "active",
            "monthly_fee": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
