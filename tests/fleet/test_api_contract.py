"""The source fleet API's contract (issue #17, "What the source system had"): a client written
from that list alone (paths exactly as written, no trailing slash, methods, field names and
JSON bodies) works against the portal once it sends a token.

``SourceClient`` knows nothing of the portal: only the issue's paths and bodies, and a token.
"""

import json
from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portal.accounts.actions import hash_token
from portal.monitoring.models import NodeLiveness
from tests.factories import AdminFactory, CredentialFactory

pytestmark = pytest.mark.django_db

VM_FIELDS = {
    "id",
    "hostname",
    "ip_address",
    "customer_id",
    "tier",
    "status",
    "created_at",
    "last_heartbeat",
    "cpu_cores",
    "memory_gb",
    "disk_gb",
    "version",
}
CUSTOMER_FIELDS = {
    "id",
    "name",
    "email",
    "company",
    "tier",
    "billing_status",
    "monthly_fee",
    "created_at",
}
METRIC_FIELDS = {"cpu_percent", "memory_percent", "disk_percent", "disk_used_gb", "timestamp"}
SOURCE_BEAT = {
    "cpu_percent": 25.5,
    "memory_percent": 45.2,
    "disk_percent": 65.0,
    "disk_used_gb": 32.5,
}


class SourceClient:
    """The source API's client: JSON in and out, the issue's paths, a token."""

    def __init__(self, token: str, scheme: str = "Token"):
        self.http = APIClient()
        self.auth = f"{scheme} {token}"

    def call(self, method: str, path: str, body=None):
        response = getattr(self.http, method.lower())(
            path,
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
            HTTP_AUTHORIZATION=self.auth,
        )
        assert response["Content-Type"].startswith("application/json"), (path, response)
        return response.status_code, response.json()

    def items(self, path: str) -> list[dict]:
        status, body = self.call("GET", path)
        assert status == 200, body
        assert isinstance(body, list), body  # the source's lists are plain arrays
        return body

    # the list
    def service_info(self):
        return self.http.get("/", HTTP_ACCEPT="application/json")

    def health(self):
        return self.call("GET", "/api/health")

    def list_vms(self, status: str | None = None):
        return self.items("/api/vms" + (f"?status={status}" if status else ""))

    def get_vm(self, vm_id: int):
        return self.call("GET", f"/api/vms/{vm_id}")

    def create_vm(self, **body):
        return self.call("POST", "/api/vms", body)

    def set_status(self, vm_id: int, status: str):
        return self.call("PUT", f"/api/vms/{vm_id}/status", {"status": status})

    def metrics(self, vm_id: int, hours: int = 24):
        return self.call("GET", f"/api/vms/{vm_id}/metrics?hours={hours}")

    def list_customers(self):
        return self.items("/api/customers")

    def get_customer(self, customer_id: int):
        return self.call("GET", f"/api/customers/{customer_id}")

    def customer_vms(self, customer_id: int):
        return self.items(f"/api/customers/{customer_id}/vms")

    def create_customer(self, **body):
        return self.call("POST", "/api/customers", body)


@pytest.fixture
def source():
    admin = AdminFactory(username="source-admin")
    CredentialFactory(name="fleet")  # the default credential of VMs created without one
    return SourceClient(Token.objects.create(user=admin).key)


def test_a_source_client_runs_through_the_whole_api(source):
    status, customer = source.create_customer(
        name="Acme", email="ops@acme.example", company="Acme Inc", tier="pro", monthly_fee=199.0
    )
    assert status == 201, customer
    assert set(customer) >= CUSTOMER_FIELDS
    assert (customer["tier"], customer["billing_status"]) == ("pro", "active")
    assert Decimal(str(customer["monthly_fee"])) == Decimal("199.00")

    status, vm = source.create_vm(
        hostname="acme-web-1",
        ip_address="203.0.113.10",
        customer_id=customer["id"],
        tier="pro",
        cpu_cores=4,
        memory_gb=16,
        disk_gb=200,
    )
    assert status == 201, vm
    assert set(vm) >= VM_FIELDS
    assert (vm["hostname"], vm["ip_address"], vm["customer_id"]) == (
        "acme-web-1",
        "203.0.113.10",
        customer["id"],
    )
    assert (vm["status"], vm["last_heartbeat"], vm["version"]) == ("offline", None, None)
    assert (vm["cpu_cores"], vm["memory_gb"], vm["disk_gb"], vm["tier"]) == (4, 16, 200, "pro")

    # the VM's agent (a source client too: the body, no seq) beats
    token = "agent-token-" + "x" * 32
    NodeLiveness.objects.create(node_id=vm["id"], token_hash=hash_token(token))
    agent = SourceClient(token, scheme="Bearer")
    status, beat = agent.call("PUT", f"/api/vms/{vm['id']}/heartbeat", SOURCE_BEAT)
    assert status == 200, beat
    status, beat = agent.call(
        "PUT", f"/api/vms/{vm['id']}/heartbeat", {**SOURCE_BEAT, "version": "2.1.0"}
    )
    assert (status, beat["seq"]) == (200, 2)

    status, shown = source.get_vm(vm["id"])
    assert status == 200
    assert (shown["status"], shown["version"]) == ("online", "2.1.0")
    assert shown["last_heartbeat"] is not None
    assert [v["id"] for v in source.list_vms("online")] == [vm["id"]]
    assert source.list_vms("offline") == []

    status, metrics = source.metrics(vm["id"], hours=24)
    assert status == 200
    points = metrics  # a plain array, as the source's
    assert len(points) == 2 and set(points[0]) >= METRIC_FIELDS
    assert points[0]["cpu_percent"] == 25.5 and points[0]["vm_id"] == vm["id"]

    status, changed = source.set_status(vm["id"], "maintenance")
    assert (status, changed["status"]) == (200, "maintenance")
    assert [v["id"] for v in source.list_vms("maintenance")] == [vm["id"]]
    status, changed = source.set_status(vm["id"], "online")
    assert (status, changed["status"]) == (200, "online")

    assert [c["id"] for c in source.list_customers()] == [customer["id"]]
    status, one = source.get_customer(customer["id"])
    assert (status, one["email"], one["tier"]) == (200, "ops@acme.example", "pro")
    assert [v["id"] for v in source.customer_vms(customer["id"])] == [vm["id"]]


def test_the_service_info_and_health(source):
    info = source.service_info()
    assert info.status_code == 200
    body = info.json()
    assert body["name"] and body["version"]
    for path in ("/api/health", "/api/vms", "/api/customers", "/api/alerts", "/api/updates"):
        assert path in json.dumps(body["endpoints"])
    assert "Accept" in info["Vary"]
    status, health = source.health()
    assert status in (200, 503) and "status" in health


def test_a_browser_still_gets_the_landing_page(client):
    page = client.get("/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 302  # to the login page, as before
    assert client.get("/").status_code == 302  # no Accept at all


@pytest.mark.parametrize(
    "path",
    [
        "/api/vms",
        "/api/vms/1",
        "/api/vms/1/metrics",
        "/api/customers",
        "/api/customers/1",
        "/api/customers/1/vms",
    ],
)
def test_without_a_token_every_path_is_a_401_in_the_error_shape(path):
    response = APIClient().get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_portals_own_customers_api_with_a_slash_is_unchanged(source):
    source.create_customer(name="Acme", email="a@acme.example", tier="enterprise")
    status, body = source.call("GET", "/api/customers/")
    assert status == 200
    assert body["results"][0]["plan"] == "enterprise"  # the portal's shape: plan, not tier
    assert "tier" not in body["results"][0]  # (and its pages: count, next, results)
