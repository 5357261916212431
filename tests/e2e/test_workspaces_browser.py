"""A customer in a real browser, on real parts: the portal's page creates a workspace on a test
host, the IDE opens through real Traefik with the revealed password (the VS Code workbench
loads), then stop and delete from the page leave nothing on the host.
"""

import os
import re
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from portal.workspaces.actions import routes
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.e2e.workspace_support import DOMAIN, assert_gone_from_host, customer_with_member
from tests.helpers import InlineWorker

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # Workspace subdomains lead to Traefik on loopback, nowhere else.
    f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1",
]
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's
MACHINE = 300_000  # ms: a create is a real playbook run over SSH


@pytest.fixture
def browser_page(live_server, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM} (`make test` installs it)", pytrace=False)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(20_000)
        errors = []
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        browser.close()
        connections.close_all()
        assert not errors, f"JavaScript errors on the portal page: {errors}"


def test_a_customer_creates_opens_stops_and_deletes_a_workspace(stack, browser_page):
    page = browser_page
    _, user = customer_with_member()
    with InlineWorker(tick=routes.confirm_routes, interval=0.3):
        page.goto("/workspaces/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/workspaces/$"))

        page.get_by_test_id("ws-new").click()
        page.get_by_test_id("ws-create-name").fill("Browser IDE")
        page.get_by_test_id("ws-create-submit").click()
        card = page.locator('[data-testid="ws-card"][data-slug="browser-ide"]')
        badge = card.get_by_test_id("ws-status")
        expect(badge).to_have_attribute("data-status", "running", timeout=MACHINE)
        workspace = Workspace.objects.get(slug="browser-ide")

        card.get_by_test_id("ws-password-reveal").click()
        shown = card.get_by_test_id("ws-password")
        expect(shown).to_have_text(re.compile(r"^\S{18,}$"))
        password = shown.inner_text().strip()
        assert password == workspace.password

        # The IDE through Traefik: code-server's login, then the workbench.
        ide = page.context.new_page()
        ide.goto(f"http://browser-ide.{DOMAIN}:{stack.traefik.entry_port}/")
        ide.locator("input[type=password]").fill(password)
        ide.locator("input[type=password]").press("Enter")
        expect(ide.locator(".monaco-workbench")).to_be_visible(timeout=90_000)
        ide.close()

        card.get_by_test_id("ws-stop").click()
        expect(badge).to_have_attribute("data-status", "stopped", timeout=MACHINE)
        assert stack.on_host(f"systemctl is-active {workspace.unit_name} || true") in (
            "inactive",
            "failed",
        )

        card.get_by_test_id("ws-delete").click()
        card.get_by_test_id("ws-delete-confirm").click()
        expect(card).to_have_count(0, timeout=MACHINE)
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED and workspace.port is None
    assert_gone_from_host(stack, workspace)
