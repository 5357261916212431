"""GET/POST /api/alerts and PUT /api/alerts/{id}/resolve (the source fleet API's paths)."""

import pytest

from portal.monitoring.models import Alert
from tests.factories import NodeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(api):
    api.force_authenticate(UserFactory(is_staff=True))
    return api


def make(**fields):
    return Alert.objects.create(**{"type": "other", "severity": "info", "message": "m", **fields})


def test_post_creates_a_manual_alert(operator_api):
    node = NodeFactory()
    body = {"vm_id": node.pk, "type": "api_quota", "severity": "high", "message": "quota 95 %"}
    response = operator_api.post("/api/alerts", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["vm_id"], data["type"], data["severity"], data["resolved"]) == (
        node.pk,
        "api_quota",
        "high",
        False,
    )
    assert data["rule"] is None and data["created_at"]
    assert Alert.objects.get(pk=data["id"]).node == node
    # trailing slash too, like the other monitoring paths
    again = operator_api.post("/api/alerts/", {"type": "other", "message": "x"}, format="json")
    assert again.status_code == 201 and again.json()["severity"] == "warning"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "nope", "message": "m"}, "type"),
        ({"message": "m"}, "type"),
        ({"type": "other", "severity": "urgent", "message": "m"}, "severity"),
        ({"type": "other"}, "message"),
        ({"type": "other", "message": "   "}, "message"),
        ({"type": "other", "message": "m" * 2001}, "message"),
        ({"type": "other", "message": "m", "vm_id": "abc"}, "vm_id"),
        ({"type": "other", "message": "m", "vm_id": True}, "vm_id"),
        ({"type": "other", "message": "m", "vm_id": 999999}, "vm_id"),
        ({"type": "other", "message": "m", "vm_id": 10**30}, "vm_id"),
        ({"type": "other", "message": "a\x00b"}, "message"),
        ({"type": "other", "message": "m", "customer_id": 999999}, "customer_id"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(operator_api, body, field):
    response = operator_api.post("/api/alerts", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.content.decode()
    assert not Alert.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(operator_api):
    response = operator_api.post("/api/alerts", [1, 2], format="json")
    assert response.status_code == 400


def test_list_is_an_array_paged_in_headers_and_filters_on_resolved(operator_api):
    open_ = make(message="open")
    make(message="done", resolved=True)
    everything = operator_api.get("/api/alerts")
    assert len(everything.json()) == 2 and everything["X-Total-Count"] == "2"
    assert 'rel="next"' not in everything["Link"]  # one page: first = last
    only_open = operator_api.get("/api/alerts?resolved=false").json()
    assert [row["id"] for row in only_open] == [open_.pk]
    assert len(operator_api.get("/api/alerts/?resolved=true").json()) == 1
    bad = operator_api.get("/api/alerts?resolved=maybe")
    assert bad.status_code == 400 and "resolved" in bad.content.decode()
    first = operator_api.get("/api/alerts?page_size=1")
    assert len(first.json()) == 1 and first["X-Total-Count"] == "2"
    assert 'rel="next"' in first["Link"] and "page=2" in first["Link"]
    second = operator_api.get("/api/alerts?page_size=1&page=2")
    assert [row["id"] for row in second.json()] == [open_.pk]  # newest first: "done", then it
    assert 'rel="prev"' in second["Link"] and 'rel="next"' not in second["Link"]


def test_resolve_once_then_409(operator_api):
    alert = make()
    first = operator_api.put(f"/api/alerts/{alert.pk}/resolve")
    assert first.status_code == 200, first.content
    assert first.json()["resolved"] is True and first.json()["resolved_at"]
    second = operator_api.put(f"/api/alerts/{alert.pk}/resolve/")
    assert second.status_code == 409
    assert operator_api.put("/api/alerts/999999/resolve").status_code == 404


def test_customers_see_no_alerts_of_others_and_cannot_write(user_api, owner):
    alert = make()
    client = user_api(owner[0])
    listing = client.get("/api/alerts")
    assert listing.status_code == 200 and listing.json() == []
    posted = client.post("/api/alerts", {"type": "other", "message": "m"}, format="json")
    assert posted.status_code == 403
    assert client.put(f"/api/alerts/{alert.pk}/resolve").status_code == 404
    alert.refresh_from_db()
    assert not alert.resolved


def test_anonymous_is_refused(api):
    assert api.get("/api/alerts").status_code in (401, 403)
    assert api.post("/api/alerts", {}, format="json").status_code in (401, 403)
