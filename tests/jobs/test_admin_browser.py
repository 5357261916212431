"""The admin job page in a real browser (Playwright + Debian's chromium): a real local job's
output appears live through the SSE stream while the job runs, under the strict CSP."""

import re

import pytest
from playwright.sync_api import expect

from portal.jobs import actions
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.browser import PASSWORD, needs_chromium
from tests.factories import AdminFactory
from tests.helpers import InlineWorker, stubbed_broker

SLOW = 60_000  # ms: a real ansible-playbook run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_job_page_shows_the_output_live_while_the_job_runs(browser_page, local_node):
    page, problems = browser_page
    admin = AdminFactory(username="job-admin")
    with stubbed_broker():  # the inline worker below runs it
        job = actions.launch(
            playbook="slow_lines.yml", nodes=[local_node], extra_vars={"seconds": 4}
        )
    url = f"/admin/jobs/job/{job.pk}/change/"

    page.goto(url)
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(url) + "$"))
    # Dispatched (to the stubbed broker), not run: nothing stored yet, the page follows the
    # stream; no Save button; Cancel offered.
    output = page.locator("#job-output")
    expect(output).to_have_text("")
    expect(page.locator("#job-output-state")).to_contain_text("live")
    expect(page.locator(".submit-row")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    # The status colour comes from portal/admin.css (dispatched: blue).
    expect(page.locator(".field-status_badge .status-badge")).to_have_css(
        "color", "rgb(21, 101, 192)"
    )

    with InlineWorker():
        # The first task's line arrives while the job still runs (sleeping), without a reload.
        expect(output).to_contain_text("first-line-marker", timeout=SLOW)
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
        expect(output).not_to_contain_text("last-line-marker")
        expect(output).to_contain_text("last-line-marker", timeout=SLOW)
        expect(page.locator("#job-output-state")).to_contain_text(
            "finished: successful", timeout=SLOW
        )
    assert page.url.endswith(url)  # the same page, never reloaded

    # Reloaded, the ended job shows its duration and Relaunch instead of Cancel.
    page.reload()
    expect(page.locator(".field-duration_shown")).to_contain_text(re.compile(r"\d+(\.\d)?s"))
    expect(page.get_by_role("button", name="Relaunch", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    assert not problems, problems
