"""The node page's charts in the real browser (Debian's chromium): Chart.js, vendored under
portal/monitoring/static, draws the points of GET /api/nodes/{id}/metrics with the site's
Content-Security-Policy and no CSP violation."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness, Rollup, Sample
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


def test_the_node_page_charts_24_hours_and_30_days(browser_page, watched_node):
    page, problems = browser_page
    user = UserFactory(is_staff=True)
    page.goto(f"/accounts/login/?next=/monitoring/nodes/{watched_node.pk}/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()

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
