"""Create: the rows and the job a create makes; plan limits, ports, names, batching."""

import pytest

from portal.accounts.models import Plan
from portal.core.errors import Conflict, PortalError
from portal.jobs.models import Job
from portal.workspaces import actions, naming
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import MembershipFactory
from tests.workspaces.helpers import finish_job

pytestmark = pytest.mark.usefixtures("broker")


def create(member, name="My IDE", **options):
    user, customer = member
    return actions.do_create(customer, user, name, **options)


def test_create_records_the_workspace_and_launches_one_create_job(
    member, ws_node, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        workspace = create(member, "Data Science")
    workspace.refresh_from_db()
    assert workspace.status == S.PROVISIONING and workspace.on_node
    assert (workspace.slug, workspace.port, workspace.linux_username) == (
        "data-science",
        8001,
        "ws-data-science",
    )
    assert len(workspace.password) >= 18 and workspace.password.isalnum()
    plan = member[1].plan
    assert (workspace.disk_quota_gb, workspace.memory_limit_mb) == (
        plan.disk_quota_gb,
        plan.memory_limit_mb,
    )
    job = workspace.current_job
    assert job.playbook == "workspace_create.yml" and job.action == actions.CREATE
    assert list(job.nodes.all()) == [ws_node] and job.customer == member[1]
    item = job.extra_vars["workspace_items"][0]
    assert item == {
        "id": workspace.pk,
        "slug": "data-science",
        "username": "ws-data-science",
        "port": 8001,
        "bind_address": "10.9.0.2",
        "quota_gb": plan.disk_quota_gb,
        "cpu_quota_percent": int(plan.cpu_limit * 100),
        "memory_max_mb": plan.memory_limit_mb,
    }
    # The password travels encrypted, never among the stored extra vars.
    assert workspace.password not in str(job.extra_vars)
    assert job.secrets() == {"workspace_passwords": {"data-science": workspace.password}}
    assert [e.to_status for e in workspace.history.order_by("id")] == [S.PENDING, S.PROVISIONING]


def test_plan_limit_is_a_clear_409(member, ws_node):
    Plan.objects.filter(pk=member[1].plan_id).update(workspace_limit=2)
    create(member, "one")
    create(member, "two")
    with pytest.raises(Conflict) as refused:
        create(member, "three")
    assert refused.value.code == "plan_limit" and "allows 2 workspaces" in refused.value.message
    assert Workspace.objects.filter(customer=member[1]).count() == 2


def test_a_full_port_range_is_a_clear_409(member, ws_node):
    ws_node.workspace_port_end = 8002
    ws_node.save()
    assert [create(member, name).port for name in ("a", "b")] == [8001, 8002]
    with pytest.raises(Conflict) as refused:
        create(member, "c")
    assert refused.value.code == "no_capacity" and "every port" in refused.value.message


def test_ports_are_per_node_and_the_least_loaded_node_is_used(member, ws_node):
    from tests.factories import NodeFactory

    other = NodeFactory(name="ws-node-2", purpose="workspace_host")
    first, second = create(member, "a"), create(member, "b")
    assert {first.node, second.node} == {ws_node, other}
    assert first.port == second.port == 8001


def test_a_deleted_workspace_frees_its_port_name_and_slug(member, ws_node):
    workspace = create(member, "scratch")
    actions.do_delete(workspace)  # pending: nothing on the node yet, deleted at once
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED and workspace.port is None
    again = create(member, "scratch")
    assert (again.slug, again.port) == ("scratch", 8001)


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "may not be blank"),
        ("   ", "may not be blank"),
        ("x" * 101, "at most 100"),
        ("evil\u202etxt", "U+202E"),
        ("tab\there", "U+0009"),
        ("nul\x00", "U+0000"),
        ("zero\u200bwidth", "U+200B"),
        (123, "must be text"),
    ],
)
def test_bad_names_are_refused_with_the_reason(member, ws_node, name, message):
    with pytest.raises(PortalError) as refused:
        create(member, name)
    assert refused.value.field == "name" and message in refused.value.message
    assert not Workspace.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize(
    "name, slug",
    [
        ("{{ lookup('pipe', 'id') }}", "lookup-pipe-id"),
        ("$(rm -rf /); `reboot`", "rm-rf-reboot"),
        ("Café ☕ Ünïcode", "cafe-unicode"),
        ("日本語", None),  # no ASCII at all: a hash-based slug
        ("9 lives", "ws-9-lives"),
    ],
)
def test_names_are_text_and_slugs_are_derived_in_a_closed_alphabet(member, ws_node, name, slug):
    workspace = create(member, name)
    assert workspace.name == name.strip()
    naming.check_slug(workspace.slug)
    if slug:
        assert workspace.slug == slug
    assert workspace.linux_username.startswith("ws-")


def test_long_names_stay_distinct_within_the_length_limits(member, ws_node):
    Plan.objects.filter(pk=member[1].plan_id).update(workspace_limit=50)
    base = "a very long workspace name that goes on and on "
    made = [create(member, f"{base}{i}") for i in range(3)]
    slugs = {w.slug for w in made}
    users = {w.linux_username for w in made}
    assert len(slugs) == len(users) == 3
    assert all(len(w.slug) <= 40 and len(w.linux_username) <= 32 for w in made)


def test_chosen_slug_is_checked_and_must_be_free(member, ws_node):
    create(member, "one", slug="my-ide")
    with pytest.raises(Conflict) as taken:
        create(member, "two", slug="My-IDE")
    assert taken.value.field == "slug" and taken.value.code == "slug_taken"
    for bad in ("-x", "a_b", "a" * 41, "admin", "x.y"):
        with pytest.raises(PortalError) as refused:
            create(member, "three", slug=bad)
        assert refused.value.field == "slug"


def test_duplicate_name_is_a_409_for_the_same_customer_only(member, ws_node):
    create(member, "same")
    with pytest.raises(Conflict) as refused:
        create(member, "same")
    assert refused.value.field == "name"
    other = MembershipFactory()
    assert actions.do_create(other.customer, other.user, "same").slug == "same-2"


def test_owner_must_be_a_member_and_billing_must_be_active(member, ws_node):
    stranger = MembershipFactory().user
    with pytest.raises(PortalError) as refused:
        actions.do_create(member[1], stranger, "x")
    assert refused.value.field == "owner"
    member[1].billing_status = "overdue"
    member[1].save()
    with pytest.raises(Conflict) as paused:
        create(member, "x")
    assert paused.value.code == "billing"


def test_creates_queued_while_a_run_goes_on_are_batched_into_the_next_run(
    member, ws_node, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = create(member, "first")
    with django_capture_on_commit_callbacks(execute=True):
        queued = [create(member, f"queued {i}") for i in range(3)]
    first.refresh_from_db()
    assert first.status == S.PROVISIONING
    assert {w.status for w in Workspace.objects.filter(pk__in=[q.pk for q in queued])} == {
        S.PENDING
    }
    finish_job(first.current_job, {"first": {"ok": True, "quota_backend": "btrfs"}})
    batch = Job.objects.filter(action=actions.CREATE).order_by("-id").first()
    assert batch != first.current_job
    assert [i["slug"] for i in batch.extra_vars["workspace_items"]] == [q.slug for q in queued]
    assert set(batch.secrets()["workspace_passwords"]) == {q.slug for q in queued}
    assert Workspace.objects.filter(current_job=batch, status=S.PROVISIONING).count() == 3


def test_creates_committed_together_are_one_run(
    member, ws_node, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        made = [create(member, f"ide {i}") for i in range(5)]
    jobs = {w.current_job_id for w in Workspace.objects.filter(pk__in=[m.pk for m in made])}
    assert len(jobs) == 1 and None not in jobs


def test_another_customers_creates_get_their_own_run(
    member, ws_node, django_capture_on_commit_callbacks
):
    other = MembershipFactory()
    with django_capture_on_commit_callbacks(execute=True):
        mine = create(member, "mine")
        theirs = actions.do_create(other.customer, other.user, "theirs")
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.current_job != theirs.current_job
    assert theirs.current_job.customer == other.customer
