"""The installer form in the real browser (Debian's chromium) under the site's CSP: rows
are shown and hidden by the server's evaluator (POST .../visibility), never by browser code."""

import pytest
from playwright.sync_api import expect

from tests.browser import PASSWORD, needs_chromium
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def test_conditional_inputs_follow_the_values(browser_page):
    page, problems = browser_page
    user = UserFactory()
    page.goto("/accounts/login/?next=/installers/web-server/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()

    certificate = page.locator('[data-input="certificate"]')
    tls_mode = page.locator('[data-input="tls_mode"]')
    upstream = page.locator('[data-input="upstream"]')
    expect(certificate).to_be_hidden()
    expect(upstream).to_be_visible()

    page.check("#id_tls_enabled")
    expect(certificate).to_be_visible()
    expect(page.locator('[data-input="tls_key"]')).to_be_visible()
    expect(tls_mode).to_be_visible()  # certificate != "" holds while it is empty: not null

    page.fill("#id_http_port", "443")
    expect(upstream).to_be_hidden()
    page.uncheck("#id_tls_enabled")
    expect(certificate).to_be_hidden()
    assert problems == []
