"""The operator page: /monitoring/ (open alerts; nodes sortable by liveness and usage), the
alert list with filters (/monitoring/alerts/) and a node's page."""

from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.monitoring.choices import AlertType, Liveness, Severity
from portal.monitoring.models import Alert, NodeLiveness
from portal.nodes.models import NodeGroup
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
    for url in ("/monitoring/", "/monitoring/alerts/", f"/monitoring/nodes/{node.pk}/"):
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
    assert "/static/vendor/chart.js/chart.umd.min.js" in html
    assert finders.find("vendor/chart.js/chart.umd.min.js")  # node_modules, from `make`
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


# --- alerts -------------------------------------------------------------------------------


def raise_alert(about=None, severity=Severity.WARNING, type=AlertType.CPU, age_minutes=0, **more):
    """An alert about a node, or a group's (site's) alert when ``about`` is a NodeGroup."""
    where = {"group": about} if isinstance(about, NodeGroup) else {"node": about}
    return Alert.objects.create(
        **where,
        type=type,
        severity=severity,
        message=more.pop("message", f"{type} {severity}"),
        created_at=timezone.now() - timedelta(minutes=age_minutes),
        **more,
    )


def resolved_ago(days, **fields):
    alert = raise_alert(**fields, age_minutes=days * 24 * 60 + 60)
    alert.resolved, alert.resolved_at = True, timezone.now() - timedelta(days=days)
    alert.save(update_fields=["resolved", "resolved_at"])
    return alert


@pytest.fixture
def sites():
    return {name: NodeGroup.objects.create(name=name, queue=name) for name in ("site-a", "site-b")}


@pytest.fixture
def alerts(fleet, sites):
    """Open alerts of every severity, on nodes of two sites and one site's own, and resolved
    ones: yesterday's and one of 20 days ago."""
    fleet["up"].group = sites["site-a"]
    fleet["up"].save(update_fields=["group"])
    fleet["down"].group = sites["site-b"]
    fleet["down"].save(update_fields=["group"])
    return {
        "info-new": raise_alert(fleet["up"], Severity.INFO, AlertType.LOAD, age_minutes=1),
        "warning-old": raise_alert(fleet["up"], Severity.WARNING, AlertType.CPU, age_minutes=50),
        "warning-new": raise_alert(
            fleet["late"], Severity.WARNING, AlertType.DISK_SPACE, age_minutes=5
        ),
        "high-old": raise_alert(fleet["down"], Severity.HIGH, AlertType.VM_OFFLINE, age_minutes=90),
        "site-b": raise_alert(
            sites["site-b"],
            Severity.HIGH,
            AlertType.VM_OFFLINE,
            age_minutes=30,
            message="Group site-b is down: 3 of 4 nodes are down.",
        ),
        "resolved-yesterday": resolved_ago(1, about=fleet["up"], severity=Severity.HIGH),
        "resolved-long-ago": resolved_ago(20, about=fleet["up"], severity=Severity.HIGH),
    }


def listed(response, key="alerts") -> list[int]:
    return [alert.pk for alert in response.context[key]]


def keys(alerts, *names) -> list[int]:
    return [alerts[name].pk for name in names]


OPEN_WORST_FIRST = ("site-b", "high-old", "warning-new", "warning-old", "info-new")


def test_the_alert_list_shows_open_alerts_most_severe_and_newest_first(staff, alerts):
    response = staff.get("/monitoring/alerts/")
    assert response.status_code == 200
    assert listed(response) == keys(alerts, *OPEN_WORST_FIRST)


def test_an_alert_row_names_severity_type_node_message_since_and_links_the_admin(
    staff, alerts, fleet
):
    alert = alerts["high-old"]
    html = staff.get("/monitoring/alerts/").content.decode()
    row = html[html.index(f'data-alert="{alert.pk}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="severity severity-high">High</span>' in row
    assert "<td>Node offline</td>" in row
    assert (
        f'href="/monitoring/nodes/{fleet["down"].pk}/" data-testid="alert-node">b-down</a>' in row
    )
    assert "(site-b)" in row and alert.message in row
    assert alert.created_at.strftime("%Y-%m-%d %H:%M:%S") in row
    assert '<span class="muted">open</span>' in row
    assert f'href="/admin/monitoring/alert/{alert.pk}/change/"' in row


def test_a_group_alert_row_names_the_group(staff, alerts, sites):
    alert = alerts["site-b"]
    html = staff.get("/monitoring/alerts/").content.decode()
    row = html[html.index(f'data-alert="{alert.pk}"') :]
    row = row[: row.index("</tr>")]
    group = sites["site-b"]
    assert f'group <a href="/monitoring/alerts/?group={group.pk}">site-b</a>' in row
    assert 'data-testid="alert-node"' not in row
    assert "Group site-b is down" in row


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"severity": "high"}, ("site-b", "high-old")),
        ({"severity": "info"}, ("info-new",)),
        ({"type": "cpu"}, ("warning-old",)),
        ({"severity": "warning", "type": "disk_space"}, ("warning-new",)),
        ({"type": "api_quota"}, ()),
        ({"severity": "", "type": ""}, OPEN_WORST_FIRST),  # the form's "any"
    ],
)
def test_filter_by_severity_and_type(staff, alerts, params, expected):
    response = staff.get("/monitoring/alerts/", params)
    assert response.status_code == 200
    assert listed(response) == keys(alerts, *expected)


def test_filter_by_node_group_takes_its_nodes_alerts_and_its_own(staff, alerts, sites):
    site_b = staff.get("/monitoring/alerts/", {"group": sites["site-b"].pk})
    assert listed(site_b) == keys(alerts, "site-b", "high-old")
    site_a = staff.get("/monitoring/alerts/", {"group": sites["site-a"].pk})
    assert listed(site_a) == keys(alerts, "warning-old", "info-new")
    assert "selected>site-a</option>" in site_a.content.decode()


@pytest.mark.parametrize(
    ("params", "also"),
    [
        ({"resolved": "on"}, ("resolved-yesterday",)),  # the last 7 days by default
        ({"resolved": "on", "days": "30"}, ("resolved-yesterday", "resolved-long-ago")),
        ({"resolved": "on", "days": "1"}, ()),
        ({"days": "30"}, ()),  # the days alone do not include them
    ],
)
def test_the_resolved_toggle_adds_those_resolved_in_the_last_days_after_the_open_ones(
    staff, alerts, params, also
):
    response = staff.get("/monitoring/alerts/", params)
    assert response.status_code == 200
    assert listed(response) == keys(alerts, *OPEN_WORST_FIRST, *also)
    if also:
        row = response.content.decode().split(f'data-alert="{alerts[also[0]].pk}"')[1]
        resolved_at = alerts[also[0]].resolved_at.strftime("%Y-%m-%d %H:%M:%S")
        assert resolved_at in row[: row.index("</tr>")]


def test_resolved_toggle_with_other_filters(staff, alerts, sites):
    response = staff.get(
        "/monitoring/alerts/",
        {"resolved": "on", "days": "30", "severity": "high", "group": sites["site-a"].pk},
    )
    assert listed(response) == keys(alerts, "resolved-yesterday", "resolved-long-ago")


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"severity": "critical"}, "severity", OPEN_WORST_FIRST),
        ({"type": "nope", "severity": "info"}, "type", ("info-new",)),  # the valid one applies
        ({"group": "abc"}, "node group", OPEN_WORST_FIRST),
        ({"group": "999999"}, "node group", OPEN_WORST_FIRST),
        ({"group": "99999999999999999999999"}, "node group", OPEN_WORST_FIRST),
        (
            {"resolved": "on", "days": "-3"},
            "number of days",
            (*OPEN_WORST_FIRST, "resolved-yesterday"),
        ),
    ],
)
def test_a_bad_filter_is_ignored_and_named(staff, alerts, params, field, expected):
    response = staff.get("/monitoring/alerts/", params)
    assert response.status_code == 400
    assert listed(response) == keys(alerts, *expected)
    html = response.content.decode()
    bad = next(value for value in params.values() if value not in ("on", "info"))
    assert f"unknown {field} “{bad}”, ignored." in html
    assert 'class="notice notice-error" role="alert"' in html


def test_a_bad_page_number_gives_the_first_page(staff, alerts):
    response = staff.get("/monitoring/alerts/", {"page": "x"})
    assert response.status_code == 200
    assert listed(response) == keys(alerts, *OPEN_WORST_FIRST)


def test_the_alert_list_is_paged_and_keeps_its_filters(staff, alerts, monkeypatch):
    from portal.monitoring import views

    monkeypatch.setattr(views, "ALERT_PAGE_SIZE", 2)
    filters = {"type": "cpu", "resolved": "on", "days": "30"}
    first = staff.get("/monitoring/alerts/", filters)
    assert listed(first) == keys(alerts, "warning-old", "resolved-yesterday")
    html = first.content.decode()
    assert 'href="?type=cpu&amp;resolved=on&amp;days=30&amp;page=2"' in html
    second = staff.get("/monitoring/alerts/", {**filters, "page": "2"})
    assert listed(second) == keys(alerts, "resolved-long-ago")
    assert 'href="?type=cpu&amp;resolved=on&amp;days=30&amp;page=1"' in second.content.decode()


def test_the_alert_list_queries_do_not_grow_with_its_rows(staff, fleet, sites):
    def queries(params) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get("/monitoring/alerts/", params).status_code == 200
        return len(captured)

    def more_alerts():
        for node in (fleet["up"], fleet["down"], fleet["late"]):
            node.group = sites["site-a"]
            node.save(update_fields=["group"])
            raise_alert(node, customer=None)
        raise_alert(sites["site-b"], Severity.HIGH)
        resolved_ago(1, about=fleet["late"])

    filtered = {"resolved": "on", "group": sites["site-a"].pk}
    more_alerts()
    few, few_filtered = queries({}), queries(filtered)
    for _ in range(5):
        more_alerts()
    assert queries({}) == few and queries(filtered) == few_filtered
    assert Alert.objects.count() > 20


def test_the_node_list_shows_the_worst_open_alerts_and_counts_by_severity(
    staff, alerts, monkeypatch
):
    from portal.monitoring import views

    monkeypatch.setattr(views, "ALERTS_ON_NODE_LIST", 3)
    response = staff.get("/monitoring/")
    assert listed(response) == keys(alerts, "site-b", "high-old", "warning-new")
    assert response.context["alert_counts"] == {"high": 2, "warning": 2, "info": 1}
    html = response.content.decode()
    assert 'href="/monitoring/alerts/?severity=high" data-testid="open-alerts-high"' in html
    assert 'href="/monitoring/alerts/" data-testid="all-alerts"' in html


def test_the_node_list_queries_do_not_grow_with_alerts(staff, fleet, sites):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get("/monitoring/").status_code == 200
        return len(captured)

    for node in fleet.values():
        node.group = sites["site-a"]
        node.save(update_fields=["group"])
    raise_alert(fleet["up"])
    few = queries()
    for node in fleet.values():
        for severity in Severity.values:
            raise_alert(node, severity)
    assert queries() == few


def test_the_node_page_shows_its_open_alerts_its_sites_and_its_last_resolved(
    staff, alerts, fleet, monkeypatch
):
    from portal.monitoring import views

    monkeypatch.setattr(views, "RESOLVED_ON_NODE_PAGE", 1)
    up = staff.get(f"/monitoring/nodes/{fleet['up'].pk}/")
    assert listed(up, "open_alerts") == keys(alerts, "warning-old", "info-new")
    assert listed(up, "resolved_alerts") == keys(alerts, "resolved-yesterday")
    html = up.content.decode()
    assert 'data-testid="node-open-alerts"' in html and 'data-testid="node-resolved-alerts"' in html
    # the down node's site is down: the site's alert is the node's too (its own is held then)
    down = staff.get(f"/monitoring/nodes/{fleet['down'].pk}/")
    assert listed(down, "open_alerts") == keys(alerts, "site-b", "high-old")
    assert listed(down, "resolved_alerts") == []
    assert "No open alerts." in staff.get(f"/monitoring/nodes/{fleet['none'].pk}/").text
