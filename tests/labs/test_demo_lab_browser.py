"""The demo customer starts the demo lab on My labs in a real browser (#19 Demo): the seeded
lab is offered, Start makes a session that the page follows while it is prepared (a real
ansible-runner job on this machine, connection=local), then shows how to get in.
Chromium must report no CSP violation and no script error."""

import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from playwright.sync_api import expect

from portal.labs.choices import SessionStatus
from portal.labs.models import LabSession
from tests.browser import needs_chromium
from tests.helpers import InlineWorker

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
SLOW = 60_000  # ms: a real ansible-playbook run


def shot(page, name):
    if os.environ.get("PORTAL_SCREENSHOTS"):
        page.screenshot(
            path=os.path.join(os.environ["PORTAL_SCREENSHOTS"], f"{name}.png"), full_page=True
        )


@pytest.fixture
def demo(settings, tmp_path, transactional_db, broker):
    settings.VAR_DIR = tmp_path / "var"
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    out = StringIO()
    call_command("seed_demo", "--no-job", stdout=out)
    return re.search(r"customer login (\S+) / (\S+)", out.getvalue()).groups()


def test_the_demo_customer_starts_the_demo_lab_in_the_browser(browser_page, demo):
    page, problems = browser_page
    username, password = demo
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_test_id("nav-labs").click()
    expect(page.get_by_test_id("labs-empty")).to_contain_text("Start one below")
    offer = page.get_by_test_id("lab-startable")
    expect(offer).to_contain_text("Demo lab")
    expect(offer).to_contain_text("for 1 h")
    shot(page, "labs-startable")

    offer.get_by_test_id("lab-start").click()
    session_card = page.get_by_test_id("lab-session")
    expect(session_card).to_have_attribute("data-status", "provisioning")
    expect(session_card.get_by_test_id("lab-preparing")).to_be_visible()
    expect(page.get_by_test_id("lab-startable")).to_have_count(0)  # one live session
    shot(page, "labs-preparing")

    with InlineWorker():  # the page reloads itself until the session is active
        expect(page.get_by_test_id("lab-session")).to_have_attribute(
            "data-status", "active", timeout=SLOW
        )
    session = LabSession.objects.get()
    assert session.status == SessionStatus.ACTIVE
    instructions = page.get_by_test_id("lab-instructions")
    expect(instructions).to_contain_text(f"Your lab Demo lab is ready, {username}.")
    expect(instructions).to_contain_text(f"/demo-lab/sessions/{session.namespace}/README")
    expect(page.get_by_test_id("lab-extend")).to_have_text("Extend by 30 minutes")
    shot(page, "labs-active")
    assert not problems, f"JavaScript errors or CSP violations on the page: {problems}"
