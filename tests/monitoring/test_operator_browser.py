"""The operator pages in the real browser (Debian's chromium), with the site's
Content-Security-Policy and no CSP violation: the node page's charts (Chart.js from the npm
registry, served from portal/deploy/node_modules, draws the points of
GET /api/nodes/{id}/metrics) and the alert list's filters."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.monitoring.choices import AlertType, Liveness, Severity
from portal.monitoring.models import Alert, NodeLiveness, Rollup, Sample
from tests.browser import PASSWORD, needs_chromium
from tests.factories import NodeFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

SAMPLES = 17  # in the last 24 h (raw)
ROLLUPS = 23  # in the last 30 days (5-minute rollups)


@pytest.fixture
def watched_node():
    node = NodeFactory(name="charted")
    now = timezone.now()
    NodeLiveness.objects.create(node=node, status=Liveness.UP, last_seen_at=now, cpu_percent=5)
    Sample.objects.bulk_create(
        Sample(
            node_id=node.pk,
            at=now - timedelta(minutes=30 * i),
            cpu_percent=10 + i,
            memory_percent=40,
            disk_percent=60 + i / 10,
            disk_used_gb=12,
            load1=0.5,
        )
        for i in range(SAMPLES)
    )
    Rollup.objects.bulk_create(
        Rollup(
            node_id=node.pk,
            bucket=now - timedelta(days=i + 1),
            samples=10,
            **{
                f"{m}_{s}": 20.0 + i
                for m in ("cpu", "memory", "disk")
                for s in ("min", "avg", "max")
            },
            disk_used_gb_max=12,
        )
        for i in range(ROLLUPS)
    )
    return node


def log_in_as_staff(page, next_url):
    user = UserFactory(is_staff=True)
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_the_node_page_charts_24_hours_and_30_days(browser_page, watched_node):
    page, problems = browser_page
    log_in_as_staff(page, f"/monitoring/nodes/{watched_node.pk}/")

    day = page.get_by_test_id("chart-24h")
    month = page.get_by_test_id("chart-720h")
    expect(day).to_have_attribute("data-points", str(SAMPLES))
    expect(day).to_have_attribute("data-resolution", "raw")
    expect(month).to_have_attribute("data-points", str(ROLLUPS))
    expect(month).to_have_attribute("data-resolution", "5m")
    # Chart.js itself holds the chart and drew on the canvas (not a blank one)
    drawn = page.evaluate(
        """() => ["chart-24h", "chart-720h"].map((id) => {
            const canvas = document.getElementById(id);
            const chart = window.Chart.getChart(canvas);
            const pixels = canvas.getContext("2d")
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
            return [chart.data.datasets.length, chart.data.datasets[2].data.length, painted];
        })"""
    )
    assert drawn[0][:2] == [3, SAMPLES] and drawn[1][:2] == [3, ROLLUPS]
    assert drawn[0][2] > 1000 and drawn[1][2] > 1000
    assert problems == []

    page.get_by_role("link", name="← All nodes").click()
    expect(page.get_by_test_id("monitoring-node")).to_have_count(1)
    assert problems == []


def test_the_alert_filters_change_the_list(browser_page, watched_node):
    page, problems = browser_page
    now = timezone.now()

    def alert(severity, message, **fields):
        return Alert.objects.create(
            node=watched_node, type=AlertType.CPU, severity=severity, message=message, **fields
        )

    alert(Severity.HIGH, "cpu on fire")
    alert(Severity.WARNING, "cpu warm")
    alert(Severity.INFO, "cpu noted")
    alert(Severity.HIGH, "cpu was on fire", resolved=True, resolved_at=now - timedelta(hours=2))
    log_in_as_staff(page, "/monitoring/")

    rows = page.get_by_test_id("open-alert-list").get_by_test_id("alert")
    expect(rows).to_have_count(3)
    page.get_by_test_id("all-alerts").click()
    listed = page.get_by_test_id("alert-list").get_by_test_id("alert")
    expect(listed).to_have_count(3)

    page.get_by_label("severity").select_option("high")
    page.get_by_test_id("alert-filter-apply").click()
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("cpu on fire")
    page.get_by_label("include resolved").check()
    page.get_by_test_id("alert-filter-apply").click()
    expect(listed).to_have_count(2)
    expect(listed.nth(1)).to_contain_text("cpu was on fire")
    assert "severity=high" in page.url and "resolved=on" in page.url

    listed.first.get_by_test_id("alert-node").click()
    expect(page.get_by_test_id("node-open-alerts").get_by_test_id("alert")).to_have_count(3)
    expect(page.get_by_test_id("node-resolved-alerts")).to_contain_text("cpu was on fire")
    assert problems == []
