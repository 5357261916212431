"""Every API error has one shape: status, code, message, errors[{field, message, code}]."""

import pytest

pytestmark = pytest.mark.django_db


def _assert_shape(body, status):
    assert set(body) == {"status", "code", "message", "errors"}
    assert body["status"] == status
    for error in body["errors"]:
        assert set(error) == {"field", "message", "code"}


def test_unauthenticated(api):
    response = api.get("/api/customers/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    _assert_shape(response.json(), 401)
    assert response.json()["errors"][0]["field"] is None


def test_validation_names_the_field(admin_api):
    response = admin_api.post(
        "/api/customers/", {"name": "", "email": "not-an-email", "plan": "starter"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    _assert_shape(body, 400)
    fields = {e["field"] for e in body["errors"]}
    assert {"name", "email"} <= fields
    assert body["message"].split(":")[0] in fields


def test_unknown_api_path_is_json_404(admin_api):
    response = admin_api.get("/api/no-such-thing/")
    assert response.status_code == 404
    _assert_shape(response.json(), 404)


def test_malformed_json_is_400(admin_api):
    response = admin_api.post("/api/customers/", "{not json", content_type="application/json")
    assert response.status_code == 400
    _assert_shape(response.json(), 400)


def test_pagination(admin_api):
    from tests.factories import CustomerFactory

    CustomerFactory.create_batch(3)
    body = admin_api.get("/api/customers/?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


@pytest.mark.parametrize("payload", ['{"name": "a\\u0000b"}', '{"name": "x"}\x00'])
def test_nul_characters_are_a_400(admin_api, payload):
    response = admin_api.post("/api/customers/", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "null_characters_not_allowed"


def test_nul_in_query_names_the_parameter(admin_api):
    response = admin_api.get("/api/customers/", {"search": "a\x00"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "search"
