"""The fleet pages: /fleet/ (operators and admins: figures, charts' data, rollouts' waves,
open alerts of VMs) and /fleet/mine/ (a customer's VMs, charts and the actions its role
allows)."""

import json
import re

import pytest
from django.test import Client

from portal.fleet.choices import RolloutStatus, TargetStatus
from portal.fleet.models import Rollout, RolloutTarget, Update
from portal.monitoring.models import Alert
from tests.factories import AdminFactory
from tests.fleet.api_helpers import customer
from tests.fleet.figure_helpers import fleet, member_of, not_a_vm_node, operator

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rollout_of(known, status=RolloutStatus.IN_PROGRESS) -> Rollout:
    update = Update.objects.create(version="2.0.0", description="next")
    rollout = Rollout.objects.create(update=update, status=status, current_wave=1)
    RolloutTarget.objects.create(
        rollout=rollout, vm=known.a_online, wave=0, status=TargetStatus.SUCCEEDED
    )
    RolloutTarget.objects.create(
        rollout=rollout, vm=known.a_offline, wave=1, status=TargetStatus.UPDATING
    )
    RolloutTarget.objects.create(
        rollout=rollout, vm=known.b_online, wave=1, status=TargetStatus.PENDING
    )
    return rollout


def test_the_fleet_page_shows_the_figures_to_operators():
    fleet()
    page = client_of(operator()).get("/fleet/")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'data-testid="vms-total">4<', html)
    assert re.search(r'data-testid="revenue">1100\.00<', html)
    assert re.search(r'data-testid="cost">260\.00<', html)
    assert re.search(r'data-testid="margin">840\.00<', html)
    figures = json.loads(
        re.search(r'id="fleet-figures" type="application/json">(.*?)</script>', html).group(1)
    )
    assert figures["vms"]["by_status"]["online"] == 2
    for chart in ("revenue", "status", "version", "usage"):
        assert f'data-chart="{chart}"' in html


def test_the_fleet_page_has_no_inline_script_or_style():
    fleet()
    html = client_of(AdminFactory()).get("/fleet/").content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all(
        "src=" in attrs or 'type="application/json"' in attrs for attrs in scripts
    )
    assert "style=" not in html and "<style" not in html


@pytest.mark.parametrize("role", ["owner", "member"])
def test_customers_may_not_see_the_fleet_page(role):
    known = fleet()
    assert client_of(member_of(known.a, role=role)).get("/fleet/").status_code == 403
    assert client_of(member_of(known.a, role=role)).get("/fleet/rollouts.json").status_code == 403


def test_anonymous_is_sent_to_the_login():
    response = Client().get("/fleet/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_rollouts_with_their_waves():
    known = fleet()
    rollout = rollout_of(known)
    html = client_of(operator()).get("/fleet/").content.decode()
    assert f'data-rollout="{rollout.pk}" data-status="in_progress"' in html
    body = client_of(operator()).get("/fleet/rollouts.json").json()
    [shown] = body["rollouts"]
    assert (shown["version"], shown["targets"], shown["done"], shown["percent"]) == (
        "2.0.0",
        3,
        1,
        33,
    )
    assert [(w["wave"], w["total"], w["done"]) for w in shown["waves"]] == [(0, 1, 1), (1, 2, 0)]
    assert shown["waves"][1]["by_status"]["updating"] == 1


def test_only_the_alerts_of_fleet_vms_are_listed():
    known = fleet()
    Alert.objects.create(
        node=known.a_offline.node, type="vm_offline", severity="high", message="vm gone"
    )
    Alert.objects.create(
        node=not_a_vm_node(), type="disk_space", severity="warning", message="lab disk"
    )
    html = client_of(operator()).get("/fleet/").content.decode()
    assert "vm gone" in html and "lab disk" not in html


def test_a_customer_sees_its_own_vms_with_charts_and_actions():
    known = fleet()
    html = client_of(member_of(known.a, role="owner")).get("/fleet/mine/").content.decode()
    shown = set(map(int, re.findall(r'data-testid="vm" data-vm="(\d+)"', html)))
    assert shown == {known.a_online.pk, known.a_offline.pk}
    assert f"/api/vms/{known.a_online.pk}/metrics?hours=24" in html
    assert f'action="/api/vms/{known.a_online.pk}/restart"' in html
    assert f'action="/api/vms/{known.a_online.pk}/rebuild"' in html
    assert known.b.name not in html


def test_a_member_sees_its_vms_without_the_actions():
    known = fleet()
    html = client_of(member_of(known.a, role="member")).get("/fleet/mine/").content.decode()
    assert 'data-testid="vm"' in html
    assert "/restart" not in html and "/rebuild" not in html


def test_operators_see_every_vm_with_the_actions_on_their_page():
    known = fleet()
    html = client_of(operator()).get("/fleet/mine/").content.decode()
    assert len(re.findall(r'data-testid="vm" ', html)) == 4
    assert f'action="/api/vms/{known.c_maintenance.pk}/restart"' in html


def test_a_user_without_vms_is_told_so():
    fleet()
    html = client_of(member_of(customer())).get("/fleet/mine/").content.decode()
    assert 'data-testid="no-vms"' in html
