"""A create refused for want of room tells the admins for real (#19): a recorded row the
admin home counts, and one email per node group per CAPACITY_NOTICE_MINUTES, not one per
refused create."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from portal.core.errors import Conflict
from portal.nodes.models import NodeGroup
from portal.workspaces import actions, notify
from portal.workspaces.models import CapacityNotice, CapacityRefusal
from tests.factories import AdminFactory, NodeFactory

pytestmark = pytest.mark.usefixtures("broker")


@pytest.fixture
def admins(db, settings):
    settings.ADMINS = []
    settings.CAPACITY_NOTICE_MINUTES = 30
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return [
        AdminFactory(username="ops-1", email="ops-1@example.com"),
        AdminFactory(username="ops-2", email="ops-2@example.com"),
        AdminFactory(username="no-mail", email=""),
    ]


def refuse(member, name="Two", **options):
    with pytest.raises(Conflict) as refused:
        actions.do_create(member[1], member[0], name, **options)
    return refused.value


@pytest.fixture
def full_node(ws_node, member):
    ws_node.group = NodeGroup.objects.create(name="site-a")
    ws_node.workspace_port_end = ws_node.workspace_port_start
    ws_node.save()
    actions.do_create(member[1], member[0], "One")
    return ws_node


def test_a_refused_create_tells_the_admins_once_then_not_again_within_the_window(
    member, full_node, admins
):
    group = full_node.group.name
    first = refuse(member, "Two")
    assert first.code == "no_capacity" and "administrators have been told" in first.message

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["ops-1@example.com", "ops-2@example.com"]
    assert group in message.subject and "no free port" in message.body.lower()
    assert member[1].name in message.body
    row = CapacityRefusal.objects.get()
    assert (row.code, row.scope, row.customer, row.admins_told) == (
        "no_capacity",
        group,
        member[1],
        True,
    )

    refuse(member, "Three")
    refuse(member, "Four")
    assert len(mail.outbox) == 1, "told again within the window"
    assert CapacityRefusal.objects.count() == 3  # every refusal is recorded
    assert CapacityRefusal.objects.filter(admins_told=True).count() == 1


def test_told_again_once_the_window_has_passed(member, full_node, admins):
    refuse(member)
    CapacityNotice.objects.update(last_told_at=timezone.now() - timedelta(minutes=31))
    refuse(member, "Three")
    assert len(mail.outbox) == 2
    assert "in the last 24 hours: 2" in mail.outbox[1].body


def test_no_node_at_all_is_told_once(member, admins, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]  # the setting wins over staff addresses
    assert refuse(member, "A").code == "no_node"
    assert refuse(member, "B").code == "no_node"
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert (
        list(CapacityRefusal.objects.values_list("scope", flat=True)) == ["no workspace node"] * 2
    )


def test_another_node_group_is_told_separately(member, full_node, admins):
    refuse(member)
    other = NodeFactory(
        name="ws-other",
        purpose="workspace_host",
        group=NodeGroup.objects.create(name="site-b"),
        workspace_port_start=9001,
        workspace_port_end=9001,
    )
    actions.do_create(member[1], member[0], "On other")  # takes the other's only port
    assert refuse(member, "Three", node=other).code == "no_capacity"
    assert len(mail.outbox) == 2
    assert "site-a" in mail.outbox[0].subject and "site-b" in mail.outbox[1].subject


def test_a_failing_mail_keeps_the_409_and_the_row(member, full_node, admins, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(notify, "send_mail", broken)
    assert refuse(member).code == "no_capacity"
    row = CapacityRefusal.objects.get()
    assert not row.admins_told


def test_plan_limit_is_not_a_capacity_refusal(member, ws_node, admins):
    member[1].plan.workspace_limit = 0
    member[1].plan.save()
    assert refuse(member).code == "plan_limit"
    assert not CapacityRefusal.objects.exists() and not mail.outbox


def test_the_admin_home_counts_the_last_day_refusals(member, full_node, admins):
    refuse(member, "Two")
    refuse(member, "Three")
    CapacityRefusal.objects.create(
        at=timezone.now() - timedelta(hours=25), code="no_node", scope="old", message="long ago"
    )
    client = Client()
    client.force_login(admins[0])
    page = client.get("/admin/").content.decode()
    assert 'id="number-creates-refused"' in page
    assert '<b>2</b><a href="/admin/workspaces/capacityrefusal/">' in page
    listing = client.get("/admin/workspaces/capacityrefusal/")
    assert listing.status_code == 200 and "long ago" in listing.content.decode()
