"""The fleet pages in the real browser (Debian's chromium) under the site's CSP: the fleet
page's charts drawn by Chart.js, a rollout's waves followed live, and the customer page's
VM charts and restart button."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.fleet.actions import usage
from portal.fleet.choices import TargetStatus
from portal.fleet.models import RolloutTarget, VMOperation
from portal.jobs.models import Job
from portal.monitoring.models import Sample
from tests.browser import PASSWORD, needs_chromium
from tests.fleet.figure_helpers import fleet, member_of, operator, rollups
from tests.fleet.test_dashboard import rollout_of

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

PAINTED = """(id) => {
    const canvas = document.getElementById(id);
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
    return [Boolean(window.Chart.getChart(canvas)), painted];
}"""


def log_in(page, user, next_url):
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_the_fleet_page_draws_its_charts_and_follows_a_rollout(browser_page):
    page, problems = browser_page
    known = fleet()
    hour = usage.hour_start(timezone.now()) - 3 * usage.HOUR
    for offset in range(2):
        rollups(known.a_online.pk, hour + offset * usage.HOUR, 10 + offset, 20, 30)
    rollout = rollout_of(known)
    log_in(page, operator(), "/fleet/")

    expect(page.get_by_test_id("chart-revenue")).to_have_attribute("data-drawn", "6")  # 2 x 3 tiers
    expect(page.get_by_test_id("chart-status")).to_have_attribute("data-drawn", "4")
    expect(page.get_by_test_id("chart-version")).to_have_attribute("data-drawn", "3")
    expect(page.get_by_test_id("chart-usage")).to_have_attribute("data-drawn", "6")  # 3 x 2 hours
    for chart in ("chart-revenue", "chart-status", "chart-version", "chart-usage"):
        held, painted = page.evaluate(PAINTED, chart)
        assert held and painted > 500, chart

    shown = page.locator(f'[data-rollout="{rollout.pk}"]')
    expect(shown.get_by_test_id("rollout-done")).to_have_text("1")
    RolloutTarget.objects.filter(rollout=rollout, vm=known.a_offline).update(
        status=TargetStatus.SUCCEEDED
    )
    RolloutTarget.objects.filter(rollout=rollout, vm=known.b_online).update(
        status=TargetStatus.FAILED
    )
    # polled live: no reload
    expect(shown.get_by_test_id("rollout-done")).to_have_text("3", timeout=10_000)
    expect(shown.get_by_test_id("rollout-failed")).to_have_text("1")
    assert (
        page.evaluate("() => document.querySelector('[data-testid=rollout-progress]').value") == 100
    )
    assert problems == []


def test_the_customer_page_charts_each_vm_and_sends_a_restart(browser_page):
    page, problems = browser_page
    known = fleet()
    now = timezone.now()
    Sample.objects.bulk_create(
        Sample(
            node_id=known.a_online.pk,
            at=now - timedelta(minutes=20 * i),
            cpu_percent=10 + i,
            memory_percent=40,
            disk_percent=60,
            disk_used_gb=12,
        )
        for i in range(7)
    )
    log_in(page, member_of(known.a, role="owner"), "/fleet/mine/")

    expect(page.get_by_test_id("vm")).to_have_count(2)
    chart = page.locator(f"#vm-{known.a_online.pk}-24h")
    expect(chart).to_have_attribute("data-points", "7")
    held, painted = page.evaluate(PAINTED, f"vm-{known.a_online.pk}-24h")
    assert held and painted > 500
    expect(page.locator(f"#vm-{known.a_offline.pk}-24h")).to_have_attribute("data-points", "0")

    vm = page.locator(f'[data-vm="{known.a_online.pk}"]')
    vm.get_by_test_id("vm-restart").get_by_role("button").click()
    result = vm.get_by_test_id("vm-action-result")
    expect(result).to_have_attribute("data-ok", "true")
    job = Job.objects.get()
    expect(result).to_have_text(f"Restart of VM {known.a_online.pk} started (job {job.pk}).")
    assert VMOperation.objects.get(job=job).vm_id == known.a_online.pk
    vm.get_by_test_id("vm-restart").get_by_role("button").click()  # one action at a time
    expect(result).to_have_attribute("data-ok", "false")
    expect(result).to_contain_text(f"job {job.pk}")  # the 409 names the running job
    assert problems == []
