"""The pages work in a real browser under the Content-Security-Policy: Chromium reports no
violation, the styles apply and the scripts run."""

import os
import re
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from tests.factories import AdminFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's
PAGES = ["/labs/", "/admin/", "/admin/nodes/node/", "/admin/nodes/node/add/",
         "/admin/jobs/job/", "/admin/auth/user/", "/admin/django_celery_beat/periodictask/"]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no chromium at {CHROMIUM} (`make test` installs it)"),
]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        problems = []
        page.on("console", lambda message: problems.append(message.text) if (
            "Content Security Policy" in message.text) else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        yield page, problems
        context.close()
        browser.close()
        connections.close_all()


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
        "Provisioning portal API")
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert not problems, problems
