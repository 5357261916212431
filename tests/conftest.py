import pytest


def _client():
    from rest_framework.test import APIClient  # needs Django settings: import lazily

    return APIClient()


@pytest.fixture
def api():
    return _client()


@pytest.fixture
def admin_user(db):
    from tests.factories import AdminFactory

    return AdminFactory(username="root-admin")


@pytest.fixture
def admin_api(api, admin_user):
    api.force_authenticate(admin_user)
    return api


@pytest.fixture
def owner(db):
    """A customer owner: (user, customer)."""
    from tests.factories import MembershipFactory

    membership = MembershipFactory()
    return membership.user, membership.customer


@pytest.fixture
def user_api(db):
    """An API client authenticated as a fresh user with no memberships."""
    from tests.factories import UserFactory

    def make(user=None):
        client = _client()
        client.force_authenticate(user or UserFactory())
        return client

    return make


@pytest.fixture
def broker():
    """Celery's broker, stubbed: tasks are published to it and recorded, never sent
    (tests/helpers.py, ``stubbed_broker``; ``broker.publish`` is the mock)."""
    from tests.helpers import stubbed_broker

    with stubbed_broker() as stub:
        yield stub


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default PBKDF2 costs ~0.25 s per user created; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """(page, problems) in Chromium on the live server; see tests/browser.py."""
    from tests.browser import open_page

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread
    with open_page(live_server.url) as opened:
        yield opened


@pytest.fixture
def keep_test_connection():
    """Like Django's test client: requests through the WSGI app (schemathesis) must not close
    the test's database connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
