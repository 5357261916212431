"""Bad input on the source API's paths: always a 4xx in the portal's error shape naming the
field and why (hostile bodies, huge ids, wrong types), and nothing stored."""

import json

import pytest

from portal.accounts.models import Customer
from portal.fleet.models import VM
from tests.factories import CredentialFactory
from tests.fleet.api_helpers import customer, vm

pytestmark = pytest.mark.django_db


def fields_of(response):
    body = response.json()
    assert {"status", "code", "message", "errors"} <= set(body), body
    return [error["field"] for error in body["errors"]]


@pytest.fixture
def owner_customer():
    CredentialFactory(name="fleet")
    return customer()


def good_vm(owner_customer, **change):
    return {
        "hostname": "web-1",
        "ip_address": "203.0.113.5",
        "customer_id": owner_customer.pk,
        "tier": "starter",
        "cpu_cores": 2,
        "memory_gb": 4,
        "disk_gb": 50,
        **change,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=running", "status"),
        ("status=ONLINE", "status"),
        ("customer_id=abc", "customer_id"),
        ("customer_id=0", "customer_id"),
        ("customer_id=-1", "customer_id"),
        ("customer_id=99999999999999999999", "customer_id"),
        ("page=0", "page"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(admin_api, query, field):
    response = admin_api.get(f"/api/vms?{query}")
    assert response.status_code == 400
    assert fields_of(response) == [field]


@pytest.mark.parametrize("hours", ["0", "-1", "abc", "2161", "1e3", "99999999999999999999", " 5"])
def test_bad_hours_are_400_naming_hours(admin_api, hours):
    target = vm(customer())
    response = admin_api.get(f"/api/vms/{target.pk}/metrics", {"hours": hours})
    assert response.status_code == 400
    assert fields_of(response) == ["hours"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/vms/99999999999999999999",
        "/api/vms/999999999999999999",
        "/api/vms/0",
        "/api/vms/abc",
        "/api/vms/1e5/metrics",
        "/api/customers/99999999999999999999",
        "/api/customers/-1/vms",
    ],
)
def test_huge_or_odd_ids_are_404(admin_api, path):
    response = admin_api.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hostname": 123}, "hostname"),
        ({"hostname": ""}, "hostname"),
        ({"hostname": "-leading-dash"}, "hostname"),
        ({"hostname": "{{ lookup('pipe','id') }}"}, "hostname"),
        ({"hostname": "a" * 64}, "hostname"),
        ({"ip_address": "999.1.1.1"}, "ip_address"),
        ({"ip_address": "web.example.com"}, "ip_address"),
        ({"ip_address": ["10.0.0.1"]}, "ip_address"),
        ({"customer_id": "abc"}, "customer_id"),
        ({"customer_id": 2**64}, "customer_id"),
        ({"customer_id": 10**12}, "customer_id"),
        ({"customer_id": None}, "customer_id"),
        ({"tier": "gold"}, "tier"),
        ({"tier": "team"}, "tier"),  # the portal's plan name: the source API says pro
        ({"cpu_cores": 0}, "cpu_cores"),
        ({"cpu_cores": 2000}, "cpu_cores"),
        ({"cpu_cores": "four"}, "cpu_cores"),
        ({"cpu_cores": True}, "cpu_cores"),
        ({"memory_gb": -4}, "memory_gb"),
        ({"disk_gb": 10**7}, "disk_gb"),
        ({"status": "online"}, "status"),  # derived: never written
        ({"version": "9.9"}, "version"),  # reported by the VM: never written
        ({"credential": 10**9}, "credential"),
    ],
)
def test_a_bad_vm_body_is_400_naming_the_field(admin_api, owner_customer, change, field):
    response = admin_api.post("/api/vms", good_vm(owner_customer, **change), format="json")
    assert response.status_code == 400, response.json()
    assert field in fields_of(response)
    assert not VM.objects.exists()


@pytest.mark.parametrize("missing", ["hostname", "ip_address", "customer_id"])
def test_a_missing_required_field_is_named(admin_api, owner_customer, missing):
    body = good_vm(owner_customer)
    del body[missing]
    response = admin_api.post("/api/vms", body, format="json")
    assert response.status_code == 400
    assert fields_of(response) == [missing]


def test_only_the_required_fields_make_a_vm_of_the_customers_tier(admin_api):
    CredentialFactory(name="fleet")
    team = customer("team")
    body = {"hostname": "Web-2", "ip_address": "2001:DB8::0001", "customer_id": team.pk}
    response = admin_api.post("/api/vms", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["hostname"], created["ip_address"], created["tier"]) == (
        "web-2",
        "2001:db8::1",
        "pro",
    )
    assert (created["cpu_cores"], created["memory_gb"], created["disk_gb"]) == (2, 4, 50)
    node = VM.objects.get(pk=created["id"]).node
    assert (node.purpose, node.credential.name) == ("fleet_host", "fleet")


def test_the_same_address_twice_is_400_naming_ip_address(admin_api, owner_customer):
    assert admin_api.post("/api/vms", good_vm(owner_customer), format="json").status_code == 201
    again = admin_api.post(
        "/api/vms", good_vm(owner_customer, hostname="web-9", ip_address=" 203.0.113.5"),
        format="json",
    )  # fmt: skip
    assert again.status_code == 400
    assert fields_of(again) == ["ip_address"] and again.json()["code"] == "unique"
    same_name = admin_api.post(
        "/api/vms", good_vm(owner_customer, ip_address="203.0.113.6"), format="json"
    )
    assert same_name.status_code == 400 and fields_of(same_name) == ["hostname"]
    assert VM.objects.count() == 1


def test_the_same_v6_address_written_otherwise_is_the_same_address(admin_api, owner_customer):
    first = good_vm(owner_customer, ip_address="2001:db8::1")
    assert admin_api.post("/api/vms", first, format="json").status_code == 201
    second = good_vm(owner_customer, hostname="web-3", ip_address="2001:0db8:0:0::0001")
    response = admin_api.post("/api/vms", second, format="json")
    assert response.status_code == 400 and fields_of(response) == ["ip_address"]


def test_without_a_credential_the_missing_default_is_named(admin_api):
    body = {"hostname": "web-4", "ip_address": "203.0.113.7", "customer_id": customer().pk}
    response = admin_api.post("/api/vms", body, format="json")
    assert response.status_code == 400
    assert fields_of(response) == ["credential"]
    assert "fleet" in response.json()["message"]


@pytest.mark.parametrize(
    "raw",
    [
        "[1, 2]",
        '"a string"',
        "null",
        "{not json",
        '{"hostname": ' * 200 + "1" + "}" * 200,
        json.dumps({"hostname": "x" * 100_000}),
    ],
)
def test_hostile_bodies_are_4xx_never_5xx(admin_api, raw):
    for path, method in (("/api/vms", "post"), ("/api/customers", "post")):
        response = getattr(admin_api, method)(path, raw, content_type="application/json")
        assert 400 <= response.status_code < 500, (path, raw[:40], response.status_code)
        assert response.json()["status"] == response.status_code


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"status": "offline"}, "status", "derived_status"),
        ({"status": "error"}, "status", "derived_status"),
        ({"status": "rebooting"}, "status", "invalid_choice"),
        ({"status": 1}, "status", "invalid_choice"),
        ({}, "status", "required"),
        ({"status": "maintenance", "reason": "r" * 201}, "reason", "max_length"),
    ],
)
def test_a_bad_status_change_is_400_naming_the_field(admin_api, body, field, code):
    target = vm(customer(), last_action_failed=True)
    response = admin_api.put(f"/api/vms/{target.pk}/status", body, format="json")
    assert response.status_code == 400
    assert fields_of(response) == [field]
    assert response.json()["errors"][0]["code"] == code
    stored = VM.objects.get(pk=target.pk)
    assert (stored.maintenance, stored.last_action_failed) == (False, True)


def test_online_ends_maintenance_and_clears_an_error(admin_api):
    target = vm(customer(), maintenance=True, last_action_failed=True, liveness="up")
    response = admin_api.put(f"/api/vms/{target.pk}/status", {"status": "online"}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "online")
    stored = VM.objects.get(pk=target.pk)
    assert (stored.maintenance, stored.last_action_failed) == (False, False)
    silent = vm(customer(), maintenance=True)
    answer = admin_api.put(f"/api/vms/{silent.pk}/status", {"status": "online"}, format="json")
    assert answer.json()["status"] == "offline"  # no heartbeats: offline, as they say


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": 5}, "email"),
        ({"name": ""}, "name"),
        ({"name": ["x"]}, "name"),
        ({"tier": "team"}, "tier"),
        ({"billing_status": "late"}, "billing_status"),
        ({"monthly_fee": -1}, "monthly_fee"),
        ({"monthly_fee": "lots"}, "monthly_fee"),
        ({"monthly_fee": 10**12}, "monthly_fee"),
        ({"vm_count": 3}, "vm_count"),
    ],
)
def test_a_bad_customer_body_is_400_naming_the_field(admin_api, change, field):
    body = {"name": "Acme", "email": "a@acme.example", "tier": "starter", **change}
    response = admin_api.post("/api/customers", body, format="json")
    assert response.status_code == 400, response.json()
    assert fields_of(response) == [field]
    assert not Customer.objects.filter(name="Acme").exists()


def test_a_customer_email_is_unique_whatever_its_case(admin_api):
    body = {"name": "Acme", "email": "ops@acme.example"}
    assert admin_api.post("/api/customers", body, format="json").status_code == 201
    again = admin_api.post("/api/customers", {**body, "email": "OPS@Acme.example"}, format="json")
    assert again.status_code == 400
    assert fields_of(again) == ["email"] and again.json()["code"] == "unique"
