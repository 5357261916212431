"""Unauthenticated API calls are a 401 with a challenge; the browser's session still works,
CSRF included (issue #19)."""

import pytest
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
