"""The operator page: /monitoring/ (nodes sortable by liveness and usage) and a node's page."""

import pytest
from django.test import Client

from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness
from tests.factories import NodeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    return client


@pytest.fixture
def fleet():
    def node(name, status=None, cpu=None, memory=None, disk=None):
        made = NodeFactory(name=name)
        if status:
            NodeLiveness.objects.create(
                node=made, status=status, cpu_percent=cpu, memory_percent=memory, disk_percent=disk
            )
        return made

    return {
        "up": node("a-up", Liveness.UP, 10.0, 80.0, 30.0),
        "down": node("b-down", Liveness.DOWN, 50.0, 20.0, 90.0),
        "late": node("c-late", Liveness.LATE, 90.0, 50.0, 10.0),
        "none": node("d-none"),
    }


def names(response) -> list[str]:
    return [node.name for node in response.context["nodes"]]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("status", ["b-down", "c-late", "d-none", "a-up"]),
        ("-status", ["a-up", "d-none", "c-late", "b-down"]),
        ("cpu", ["c-late", "b-down", "a-up", "d-none"]),
        ("-cpu", ["a-up", "b-down", "c-late", "d-none"]),
        ("memory", ["a-up", "c-late", "b-down", "d-none"]),
        ("disk", ["b-down", "a-up", "c-late", "d-none"]),
        ("name", ["a-up", "b-down", "c-late", "d-none"]),
        ("bogus", ["b-down", "c-late", "d-none", "a-up"]),  # unknown sort: by status
    ],
)
def test_nodes_sort_by_status_and_usage(staff, fleet, sort, order):
    response = staff.get("/monitoring/", {"sort": sort})
    assert response.status_code == 200
    assert names(response) == order


def test_the_page_shows_status_and_usage_and_links_each_node(staff, fleet):
    html = staff.get("/monitoring/").content.decode()
    assert 'class="status status-down"' in html and "90.0 %" in html
    assert f'href="/monitoring/nodes/{fleet["up"].pk}/"' in html


def test_the_pages_are_staff_only(client, fleet):
    node = fleet["up"]
    for url in ("/monitoring/", f"/monitoring/nodes/{node.pk}/"):
        assert client.get(url).status_code == 302  # to the login
        client.force_login(UserFactory(is_staff=False))
        assert client.get(url).status_code == 302
        client.logout()


def test_the_node_page_names_its_two_ranges_and_loads_only_static_scripts(staff, fleet):
    node = fleet["down"]
    response = staff.get(f"/monitoring/nodes/{node.pk}/")
    html = response.content.decode()
    assert f'data-url="/api/nodes/{node.pk}/metrics?hours=24"' in html
    assert f'data-url="/api/nodes/{node.pk}/metrics?hours=720"' in html
    assert "chart-4.6.1.umd.min.js" in html
    assert "<script>" not in html  # no inline script (CSP)
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert f"/admin/monitoring/monitorednode/{node.pk}/change/" in html
    assert staff.get("/monitoring/nodes/999999/").status_code == 404


def test_the_admin_page_links_the_charts(fleet):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    node = fleet["up"]
    html = client.get(f"/admin/monitoring/monitorednode/{node.pk}/change/").content.decode()
    assert f'href="/monitoring/nodes/{node.pk}/"' in html


def test_the_list_is_paged_and_keeps_its_order(staff, fleet, monkeypatch):
    from portal.monitoring import views

    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    first = staff.get("/monitoring/", {"sort": "-cpu"})
    assert names(first) == ["a-up", "b-down", "c-late"]
    assert 'href="?sort=-cpu&amp;page=2"' in first.content.decode()
    second = staff.get("/monitoring/", {"sort": "-cpu", "page": "2"})
    assert names(second) == ["d-none"]
    assert names(staff.get("/monitoring/", {"page": "x"})) == ["b-down", "c-late", "d-none"]


def test_the_nav_offers_the_operator_page_to_staff_only(client, staff):
    assert 'href="/monitoring/" data-testid="nav-monitoring"' in staff.get("/members/").text
    client.force_login(UserFactory(is_staff=False))
    assert 'data-testid="nav-monitoring"' not in client.get("/members/").text
