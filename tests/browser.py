"""Real-browser tests: Debian's chromium driven by Playwright (`make test` installs it).

``open_page(base_url)`` yields a page and the list of problems Chromium reported on it (CSP
violations and script errors); the ``browser_page`` fixture (tests/conftest.py) opens one on
the live server.
"""

import contextlib
import os
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no chromium at {CHROMIUM} (`make test` installs it)"
)


@contextlib.contextmanager
def open_page(base_url: str):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base_url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        problems: list[str] = []
        page.on(
            "console",
            lambda message: (
                problems.append(message.text)
                if ("Content Security Policy" in message.text)
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            yield page, problems
        finally:
            context.close()
            browser.close()
            # While Playwright's loop runs, Django keeps this thread's connections per
            # context: close the test's own, or PostgreSQL cannot drop the test database.
            connections.close_all()
