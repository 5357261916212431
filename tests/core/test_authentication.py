"""Unauthenticated API calls are a 401 with a challenge; the browser's session still works,
CSRF included (issue #19)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "method, url",
    [("get", "/api/customers/"), ("post", "/api/nodes/"), ("get", "/api/jobs/1/stream/")],
)
def test_no_credentials_is_a_401_with_a_token_challenge(api, method, url):
    response = getattr(api, method)(url, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    body = response.json()
    assert set(body) == {"status", "code", "message", "errors"}
    assert (body["status"], body["code"]) == (401, "not_authenticated")
    assert body["errors"][0]["field"] is None


def test_a_wrong_token_is_a_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token nope")
    response = api.get("/api/customers/")
    assert response.status_code == 401 and response.json()["message"] == "Invalid token."


@pytest.mark.parametrize("key", ["a\x00b", "k" * 10_000, "clé-ünïcode", "' OR '1'='1", "%s"])
def test_a_hostile_token_is_a_401(api, key):
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api.get("/api/customers/")
    assert response.status_code == 401 and response.json()["message"].startswith("Invalid token")


def test_a_token_signs_in(api):
    user = UserFactory(is_staff=True)
    api.credentials(HTTP_AUTHORIZATION=f"Token {user_token(user)}")
    assert api.get("/api/customers/").status_code == 200


def user_token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=user).key


def test_the_browser_session_reads_and_writes_with_its_csrf_token():
    user = UserFactory(is_staff=True)
    customer = CustomerFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get("/api/customers/").status_code == 200
    url = f"/api/customers/{customer.pk}/"
    refused = browser.patch(url, {"name": "x"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    browser.get("/admin/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    response = browser.patch(
        url, {"name": "Renamed"}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"


@pytest.mark.parametrize(
    ("group", "staff", "operator"),
    [("", False, False), ("operators", False, True), ("", True, True), ("others", False, False)],
)
def test_the_token_loads_its_user_as_the_orm_does_with_the_operator_flag(group, staff, operator):
    """The hand-written query (one, prepared on PostgreSQL) gives the same user, every field
    as the ORM loads it (SQLite's dates aware, booleans bools), and the operator flag."""
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from portal.core.api.authentication import TokenAuthentication
    from portal.core.tenancy import OPERATORS_GROUP, is_operator

    user = UserFactory(is_staff=staff, last_login=timezone.now())
    if group:
        user.groups.add(
            Group.objects.get_or_create(name=OPERATORS_GROUP if group == "operators" else group)[0]
        )
    key = user_token(user)
    loaded, token = TokenAuthentication().authenticate_credentials(key)
    stored = get_user_model().objects.get(pk=user.pk)
    fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert [getattr(loaded, name) for name in fields] == [getattr(stored, name) for name in fields]
    assert loaded.last_login.tzinfo is not None and loaded.is_active is True
    assert token == Token.objects.get(key=key) and token.user is loaded
    assert is_operator(loaded) is operator


def test_an_inactive_users_token_is_a_401(api):
    user = UserFactory(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {user_token(user)}")
    response = api.get("/api/customers/")
    assert response.status_code == 401 and response.json()["message"] == "User inactive or deleted."
