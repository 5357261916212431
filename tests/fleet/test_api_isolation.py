"""Tenancy on every source API path: customer B sees none of A's VMs, metrics or customer
(404, never 403, for A's ids), members read, owners set maintenance, operators and admins
see all, only admins create."""

import pytest
from django.contrib.auth.models import Group

from portal.core.tenancy import OPERATORS_GROUP
from portal.fleet.models import VM
from portal.monitoring.models import Sample
from tests.factories import CredentialFactory, UserFactory
from tests.fleet.api_helpers import customer, member_of, vm

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    """Customer A with two VMs (one with a sample), customer B with one; their users."""
    a, b = customer(), customer("team")
    a_vms = [vm(a, liveness="up"), vm(a)]
    b_vm = vm(b, liveness="up")
    Sample.objects.create(
        node_id=a_vms[0].pk, at=a_vms[0].created_at, cpu_percent=1, memory_percent=2,
        disk_percent=3, disk_used_gb=4,
    )  # fmt: skip
    return {
        "a": a,
        "b": b,
        "a_vms": a_vms,
        "b_vm": b_vm,
        "a_owner": member_of(a, "owner"),
        "a_member": member_of(a, "member"),
        "b_owner": member_of(b, "owner"),
    }


def as_user(user_api, user):
    return user_api(user)


def ids(response):
    assert response.status_code == 200, response.json()
    return sorted(row["id"] for row in response.json())


def test_b_sees_only_its_own_vms_and_customer_in_every_list(fleet, user_api):
    client = as_user(user_api, fleet["b_owner"])
    assert ids(client.get("/api/vms")) == [fleet["b_vm"].pk]
    assert ids(client.get("/api/vms?status=online")) == [fleet["b_vm"].pk]
    assert ids(client.get(f"/api/vms?customer_id={fleet['a'].pk}")) == []
    assert ids(client.get("/api/customers")) == [fleet["b"].pk]


@pytest.mark.parametrize(
    "path",
    [
        "/api/vms/{vm}",
        "/api/vms/{vm}/metrics",
        "/api/vms/{vm}/metrics?hours=720",
        "/api/customers/{customer}",
        "/api/customers/{customer}/vms",
    ],
)
def test_as_ids_are_404_for_b_on_every_read(fleet, user_api, path):
    client = as_user(user_api, fleet["b_owner"])
    url = path.format(vm=fleet["a_vms"][0].pk, customer=fleet["a"].pk)
    response = client.get(url)
    assert response.status_code == 404, response.json()
    assert str(fleet["a_vms"][0].node.name) not in response.content.decode()
    # and the same answer as for an id that does not exist
    missing = client.get(path.format(vm=10**12, customer=10**12))
    assert missing.status_code == 404
    assert missing.json()["code"] == response.json()["code"]


def test_b_cannot_set_as_vms_status_and_learns_nothing(fleet, user_api):
    client = as_user(user_api, fleet["b_owner"])
    target = fleet["a_vms"][0]
    response = client.put(f"/api/vms/{target.pk}/status", {"status": "maintenance"}, format="json")
    assert response.status_code == 404
    assert not VM.objects.get(pk=target.pk).maintenance


def test_a_member_reads_but_only_an_owner_sets_maintenance(fleet, user_api):
    target = fleet["a_vms"][0]
    member = as_user(user_api, fleet["a_member"])
    assert member.get(f"/api/vms/{target.pk}").status_code == 200
    refused = member.put(f"/api/vms/{target.pk}/status", {"status": "maintenance"}, format="json")
    assert refused.status_code == 403
    assert not VM.objects.get(pk=target.pk).maintenance
    owner = as_user(user_api, fleet["a_owner"])
    done = owner.put(f"/api/vms/{target.pk}/status", {"status": "maintenance"}, format="json")
    assert (done.status_code, done.json()["status"]) == (200, "maintenance")


def test_a_user_of_no_customer_sees_nothing(fleet, user_api):
    client = as_user(user_api, UserFactory())
    assert ids(client.get("/api/vms")) == []
    assert ids(client.get("/api/customers")) == []
    assert client.get(f"/api/vms/{fleet['b_vm'].pk}").status_code == 404


def test_operators_see_and_maintain_every_vm_but_create_none(fleet, user_api):
    operator = UserFactory()
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    client = as_user(user_api, operator)
    everyone = sorted([v.pk for v in fleet["a_vms"]] + [fleet["b_vm"].pk])
    assert ids(client.get("/api/vms")) == everyone
    assert ids(client.get("/api/customers")) == sorted([fleet["a"].pk, fleet["b"].pk])
    target = fleet["b_vm"]
    done = client.put(f"/api/vms/{target.pk}/status", {"status": "maintenance"}, format="json")
    assert done.status_code == 200
    body = {"hostname": "x1", "ip_address": "203.0.113.9", "customer_id": fleet["a"].pk}
    assert client.post("/api/vms", body, format="json").status_code == 403
    assert client.post("/api/customers", {"name": "n", "email": "n@x.example"}).status_code == 403


def test_only_admins_create_vms_and_customers(fleet, user_api, admin_api):
    CredentialFactory(name="fleet")
    owner = as_user(user_api, fleet["a_owner"])
    body = {"hostname": "a-new", "ip_address": "203.0.113.20", "customer_id": fleet["a"].pk}
    refused = owner.post("/api/vms", body, format="json")
    assert refused.status_code == 403
    assert not VM.objects.filter(node__name="a-new").exists()
    customer_body = {"name": "Mallory", "email": "m@x.example"}
    assert owner.post("/api/customers", customer_body, format="json").status_code == 403
    assert admin_api.post("/api/vms", body, format="json").status_code == 201
    assert admin_api.post("/api/customers", customer_body, format="json").status_code == 201


def test_admins_see_every_vm_and_narrow_by_customer(fleet, admin_api):
    everyone = sorted([v.pk for v in fleet["a_vms"]] + [fleet["b_vm"].pk])
    assert ids(admin_api.get("/api/vms")) == everyone
    a_only = sorted(v.pk for v in fleet["a_vms"])
    assert ids(admin_api.get(f"/api/vms?customer_id={fleet['a'].pk}")) == a_only
    assert ids(admin_api.get(f"/api/customers/{fleet['a'].pk}/vms")) == a_only


def _alert(**fields):
    from portal.monitoring.models import Alert

    return Alert.objects.create(type="disk_space", severity="warning", message="m", **fields)


def test_b_reads_the_alerts_of_its_vms_and_customer_only(fleet, user_api):
    on_a_vm = _alert(node_id=fleet["a_vms"][0].pk)
    of_a = _alert(customer=fleet["a"])
    on_b_vm = _alert(node_id=fleet["b_vm"].pk)
    of_b = _alert(customer=fleet["b"])
    unowned = _alert()  # no node, no customer: operators only
    client = as_user(user_api, fleet["b_owner"])
    assert ids(client.get("/api/alerts")) == sorted([on_b_vm.pk, of_b.pk])
    assert ids(client.get("/api/alerts?resolved=false")) == sorted([on_b_vm.pk, of_b.pk])
    for other in (on_a_vm, of_a, unowned):
        assert client.put(f"/api/alerts/{other.pk}/resolve").status_code == 404
    # B's own alert: readable, but resolving is for operators (403 says so; nothing changes)
    refused = client.put(f"/api/alerts/{on_b_vm.pk}/resolve")
    assert refused.status_code == 403, refused.json()
    on_b_vm.refresh_from_db()
    assert not on_b_vm.resolved
    a_client = as_user(user_api, fleet["a_member"])
    assert ids(a_client.get("/api/alerts")) == sorted([on_a_vm.pk, of_a.pk])
