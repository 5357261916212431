"""The pages work in a real browser under the Content-Security-Policy: Chromium reports no
violation, the styles apply and the scripts run."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import PASSWORD, needs_chromium
from tests.factories import AdminFactory

PAGES = [
    "/labs/",
    "/admin/",
    "/admin/nodes/node/",
    "/admin/nodes/node/add/",
    "/admin/jobs/job/",
    "/admin/auth/user/",
    "/admin/django_celery_beat/periodictask/",
]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_pages_work_under_the_policy(browser_page):
    page, problems = browser_page
    admin = AdminFactory(username="csp-admin")
    page.goto("/accounts/login/?next=/workspaces/")
    # base.css applied: the header is dark.
    expect(page.locator("header")).to_have_css("background-color", "rgb(29, 36, 51)")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/workspaces/$"))
    page.get_by_test_id("ws-new").click()  # dashboard.js runs: the dialog opens
    expect(page.get_by_test_id("ws-create-dialog")).to_be_visible()
    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("load")
    # django-celery-beat's form, its script moved to a file, still runs.
    page.goto("/admin/django_celery_beat/periodictask/add/")
    expect(page.locator(".field-crontab_translation")).to_have_count(1)
    expect(page.locator(".field-crontab_translation")).to_be_hidden()
    # Swagger UI renders from our own static files (this machine has no route to a CDN).
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .information-container")).to_contain_text(
        "Provisioning portal API"
    )
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert not problems, problems
