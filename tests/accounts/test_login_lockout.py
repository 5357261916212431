"""Login lockout (issue #12, finding 6): after LOGIN_FAILURE_LIMIT wrong passwords a user is
refused from that address, the right password too, on every entry point: the API's token
view, the admin's login and the customers' login page."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's
ATTACKER = "203.0.113.7"
MESSAGE = "Too many failed logins; try again in 15 minutes."


def api_login(username, password, ip=ATTACKER, **headers):
    return Client().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=ip,
        **headers,
    )


def admin_login(username, password, ip=ATTACKER, **headers):
    return Client().post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        **headers,
    )


def customer_login(username, password, ip=ATTACKER, **headers):
    return Client().post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **headers
    )


def logged_in(response) -> bool:
    """A token (API) or a redirect away from the login page (admin, customer pages)."""
    if response.status_code == 200 and response["Content-Type"] == "application/json":
        return "token" in response.json()
    return response.status_code == 302


ENTRY_POINTS = [api_login, admin_login, customer_login]


@pytest.fixture
def user(db):
    return AdminFactory(username="alice")  # staff: the admin's login accepts her too


def fail_until_locked(login, username, limit, **kwargs) -> int:
    """Wrong passwords until the answer is 429; how many were answered as just wrong."""
    for attempt in range(1, 3 * limit):
        response = login(username, "wrong-password", **kwargs)
        if response.status_code == 429:
            return attempt - 1
        assert not logged_in(response) and response.status_code in (200, 400), response
    raise AssertionError(f"no lockout after {3 * limit} wrong passwords")


@pytest.mark.parametrize("login", ENTRY_POINTS)
def test_wrong_passwords_lock_out_even_the_right_one(login, user, settings):
    answered_wrong = fail_until_locked(login, "alice", settings.LOGIN_FAILURE_LIMIT)
    # The limit'th failure is itself answered 429: LOGIN_FAILURE_LIMIT guesses, no more.
    assert answered_wrong == settings.LOGIN_FAILURE_LIMIT - 1 == 4
    response = login("alice", PASSWORD)
    assert response.status_code == 429 and not logged_in(response)
    assert response["Retry-After"] == "900"


def test_api_lockout_is_the_documented_error_shape(user, settings):
    fail_until_locked(api_login, "alice", settings.LOGIN_FAILURE_LIMIT)
    response = api_login("alice", PASSWORD)
    assert response.status_code == 429
    assert response.json() == {
        "status": 429,
        "code": "locked_out",
        "message": MESSAGE,
        "errors": [{"field": None, "message": MESSAGE, "code": "locked_out"}],
    }


@pytest.mark.parametrize("login", [admin_login, customer_login])
def test_login_pages_say_the_login_is_locked(login, user, settings):
    fail_until_locked(login, "alice", settings.LOGIN_FAILURE_LIMIT)
    response = login("alice", PASSWORD)
    assert response.status_code == 429
    assert "Login locked" in response.content.decode()
    assert MESSAGE in response.content.decode()


@pytest.mark.parametrize("login", ENTRY_POINTS)
def test_lockout_is_per_user_and_address(login, user, settings):
    AdminFactory(username="bob")
    fail_until_locked(login, "alice", settings.LOGIN_FAILURE_LIMIT)
    assert logged_in(login("bob", PASSWORD))  # another user, same address
    assert logged_in(login("alice", PASSWORD, ip="198.51.100.9"))  # same user, elsewhere


def test_one_entry_point_locks_the_others(user, settings):
    """The count is the user's at that address, whichever door the guesses came through."""
    fail_until_locked(api_login, "alice", settings.LOGIN_FAILURE_LIMIT)
    assert admin_login("alice", PASSWORD).status_code == 429
    assert customer_login("alice", PASSWORD).status_code == 429


def test_a_session_login_resets_the_count(user, settings):
    """A typo now and then never adds up. (A token from the API is no login session: its
    successes do not reset the count, its failures count all the same.)"""
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        customer_login("alice", "wrong-password")
    assert logged_in(customer_login("alice", PASSWORD))
    assert customer_login("alice", "wrong-password").status_code == 200  # counted from zero


@pytest.mark.parametrize(
    "reset",
    [
        lambda: call_command("axes_reset_username", "alice"),
        lambda: call_command("axes_reset"),
    ],
)
def test_admin_command_unlocks(reset, user, settings):
    fail_until_locked(api_login, "alice", settings.LOGIN_FAILURE_LIMIT)
    reset()
    assert logged_in(api_login("alice", PASSWORD))


def test_deleting_the_attempt_in_the_admin_unlocks(user, settings):
    fail_until_locked(customer_login, "alice", settings.LOGIN_FAILURE_LIMIT)
    operator = Client()
    operator.force_login(AdminFactory(username="operator"))
    attempt = AccessAttempt.objects.get(username="alice")
    response = operator.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert logged_in(customer_login("alice", PASSWORD))


def test_the_user_admin_action_unlocks(user, settings):
    fail_until_locked(admin_login, "alice", settings.LOGIN_FAILURE_LIMIT)
    operator = Client()
    operator.force_login(AdminFactory(username="operator"))
    response = operator.post(
        "/admin/auth/user/", {"action": "unlock_login", "_selected_action": [user.pk]}, follow=True
    )
    assert "Unlocked 1 user(s); 1 failed-login record(s) cleared." in response.content.decode()
    assert logged_in(admin_login("alice", PASSWORD))


def test_forwarded_for_is_ignored_unless_behind_the_proxy(user, settings):
    """Without the proxy a client writes X-Forwarded-For itself: a new address per guess
    must not buy new guesses."""
    for attempt in range(settings.LOGIN_FAILURE_LIMIT):
        response = api_login("alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}")
    assert response.status_code == 429
    assert AccessAttempt.objects.get().ip_address == ATTACKER


def test_behind_the_proxy_the_client_is_the_address_it_appended(user, settings):
    settings.BEHIND_TLS_PROXY = True
    proxy = "127.0.0.1"
    for attempt in range(settings.LOGIN_FAILURE_LIMIT):
        # What the client sent itself stays on the left of the address the proxy appends.
        api_login(
            "alice",
            "wrong-password",
            ip=proxy,
            HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}, {ATTACKER}",
        )
    assert AccessAttempt.objects.get().ip_address == ATTACKER
    locked = api_login("alice", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert locked.status_code == 429
    elsewhere = api_login("alice", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert logged_in(elsewhere)


def test_an_overlong_username_is_counted_not_a_server_error(db):
    response = api_login("x" * 1000, "wrong-password")
    assert response.status_code == 400
    assert len(AccessAttempt.objects.get().username) == 255
