"""Hostile requests get a 4xx in the one JSON error shape, never a 5xx or an HTML page.

Deep nesting on every write operation of the schema (anonymous and authenticated), deep
and huge ``extra_vars``, bodies over the size limit, unknown /api/ paths, wrong content
types, invalid UTF-8, and JSON that is not an object.
"""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

WRITES = ("post", "put", "patch")
OPERATIONS = sorted(
    (method, path)
    for path, item in SchemaGenerator().get_schema(public=True)["paths"].items()
    for method in item
    if method in WRITES
)
MB = 1024 * 1024


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_error_shape(response, status=None):
    assert response.status_code < 500, response.content[:300]
    assert response.status_code >= 400
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = json.loads(response.content)
    assert set(body) == {"status", "code", "message", "errors"}
    assert body["status"] == response.status_code
    assert body["errors"] and all(set(e) == {"field", "message", "code"} for e in body["errors"])
    if status is not None:
        assert response.status_code == status, body
    return body


@pytest.fixture
def objects(db):
    """One row behind each {id} the write operations name (others answer 404)."""
    from tests.factories import CredentialFactory, MembershipFactory, NodeFactory

    return {
        "customers": MembershipFactory().customer.pk,
        "nodes": NodeFactory().pk,
        "credentials": CredentialFactory().pk,
    }


def _url(path: str, objects: dict) -> str:
    collection = path.split("/")[2]
    return path.replace("{id}", str(objects.get(collection, 999999)))


def _send(client, method, url, body, content_type="application/json"):
    return getattr(client, method)(url, body, content_type=content_type)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_deep_nesting_on_every_write(api, admin_user, objects, method, path, who):
    if who == "admin":
        api.force_authenticate(admin_user)
    response = _send(api, method, _url(path, objects), nested(5000))
    body = assert_error_shape(response)
    if response.status_code == 400:
        assert body["code"] == "nesting_too_deep" and "nested too deeply" in body["message"]


def test_deep_nesting_on_the_token_endpoint_names_the_problem(api):
    body = assert_error_shape(_send(api, "post", "/api/auth/token/", nested(5000)), 400)
    assert body["code"] == "nesting_too_deep"


@pytest.mark.parametrize("depth", [65, 900, 3000])
def test_nesting_just_past_the_bound_is_refused(admin_api, depth):
    payload = '{"name": ' + nested(depth - 1) + "}"
    body = assert_error_shape(_send(admin_api, "post", "/api/customers/", payload), 400)
    assert body["code"] == "nesting_too_deep"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize("payload", ["[]", '"text"', "1", "null", "true"])
def test_json_that_is_not_an_object(admin_api, objects, method, path, payload):
    response = _send(admin_api, method, _url(path, objects), payload)
    body = assert_error_shape(response)
    if response.status_code == 400:
        assert body["code"] == "not_an_object"


@pytest.fixture
def node(db):
    from tests.factories import NodeFactory

    return NodeFactory(name="hostile-n1")


def _launch(client, extra_vars: str):
    payload = '{"playbook": "ping.yml", "nodes": ["hostile-n1"], "extra_vars": ' + extra_vars
    return _send(client, "post", "/api/jobs/", payload + "}")


@pytest.mark.parametrize("depth", [500, 900, 3000])
def test_deep_extra_vars(admin_api, node, depth):
    response = _launch(admin_api, '{"x": ' + nested(depth) + "}")
    assert_error_shape(response, 400)


def test_extra_vars_within_the_body_bound_but_too_deep_names_the_field(admin_api, node):
    body = assert_error_shape(_launch(admin_api, '{"x": ' + nested(40) + "}"), 400)
    assert body["errors"][0]["field"] == "extra_vars" and "too deeply" in body["message"]


def test_extra_vars_too_large(admin_api, node):
    body = assert_error_shape(_launch(admin_api, json.dumps({"x": "a" * (MB + 10)})), 400)
    assert body["errors"][0]["field"] == "extra_vars" and "too large" in body["message"]


def test_extra_vars_bounds_hold_outside_the_api():
    """The admin, the CLI and the domain actions launch through the same check."""
    from portal.core.errors import PortalError
    from portal.jobs.actions import check_extra_vars

    deep = {"x": []}
    for _ in range(3000):
        deep = {"x": [deep]}
    with pytest.raises(PortalError, match="too deeply"):
        check_extra_vars(deep)
    assert check_extra_vars({"x": {"y": [1, {"z": "ok"}]}}) == {"x": {"y": [1, {"z": "ok"}]}}


@pytest.mark.parametrize("size", [5 * MB, 20 * MB])
@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("anonymous", "/api/auth/token/"),
        ("admin", "/api/customers/"),
        ("admin", "/api/jobs/"),
        ("admin", "/api/no-such-thing/"),
    ],
)
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"],
)
def test_huge_bodies(api, admin_user, who, url, size, content_type):
    if who == "admin":
        api.force_authenticate(admin_user)
    body = assert_error_shape(_send(api, "post", url, b"x" * size, content_type), 413)
    assert body["code"] == "request_too_large"


@pytest.mark.parametrize(
    "path",
    [
        "/api/no-such-thing",
        "/api/no-such-thing/",
        "/api/customers/not-a-number/",
        "/api/%ff%fe/",
        "/api/customers/999999/cancel/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_paths(admin_api, path, method):
    response = getattr(admin_api, method)(path)
    assert_error_shape(response)
    assert response.status_code in (404, 405)  # 405: a detail route without that method


def test_unknown_api_path_is_json_with_debug_on(admin_api, settings):
    settings.DEBUG = True  # DEBUG's technical 404 page is HTML
    assert_error_shape(admin_api.get("/api/no-such-thing/"), 404)


def test_a_method_a_plain_django_view_does_not_take(api):
    response = api.post("/api/traefik/config")
    body = assert_error_shape(response, 405)
    assert body["code"] == "method_not_allowed" and response["Allow"] == "GET"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "text/html",
        "application/octet-stream",
        "application/json-x",
        "nonsense",
        "application/json; charset=nope",
    ],
)
@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_wrong_content_types(api, admin_user, who, content_type):
    if who == "admin":
        api.force_authenticate(admin_user)
    for url in ("/api/auth/token/", "/api/customers/"):
        assert_error_shape(_send(api, "post", url, b'{"name": "x"}', content_type))


@pytest.mark.parametrize(
    "payload", [b'{"name": "\xff\xfe"}', b"\xff\xfe\xfd", b'{"\xc3": 1}', b"\xef\xbb\xbf{}"]
)
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_invalid_utf8(admin_api, payload, content_type):
    for url in ("/api/auth/token/", "/api/customers/", "/api/jobs/"):
        response = _send(admin_api, "post", url, payload, content_type)
        assert_error_shape(response)


def test_invalid_utf8_in_the_query(admin_api):
    response = admin_api.generic("GET", "/api/customers/?search=%ff%fe&ordering=%c3")
    assert response.status_code < 500


def test_plain_text_errors_from_other_middleware_are_shaped(rf):
    """A response made outside DRF (a lockout, CSRF) keeps its status, message and headers."""
    from django.http import HttpResponse

    from portal.core.middleware import ApiErrorShapeMiddleware

    def locked(request):
        response = HttpResponse(
            "Account locked: too many login attempts.", status=429, content_type="text/plain"
        )
        response["Retry-After"] = "60"
        return response

    response = ApiErrorShapeMiddleware(locked)(rf.post("/api/auth/token/"))
    body = assert_error_shape(response, 429)
    assert body["message"] == "Account locked: too many login attempts."
    assert body["code"] == "throttled" and response["Retry-After"] == "60"
    page = ApiErrorShapeMiddleware(locked)(rf.post("/admin/login/"))
    assert page["Content-Type"].startswith("text/plain")
