"""/api/installers/: list, detail, schema, validate, visibility; 404s, 400 bodies, 401."""

import jsonschema
import pytest

from portal.installers import catalogue

pytestmark = pytest.mark.django_db
URL = "/api/installers/"


@pytest.fixture
def client(user_api):
    return user_api()  # a user with no memberships: the catalogue is for everyone signed in


def test_list(client):
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body] == ["minimal", "web-server"]
    web = body[1]
    assert web == {
        "id": "web-server",
        "name": "Web server",
        "version": "1.2.0",
        "description": "A web server with optional TLS, for the installers' unit tests.",
        "category": "web",
        "author": "Portal tests",
        "os_requirements": {"family": ["debian", "ubuntu"], "min_version": "12"},
        "resource_requirements": {"min_ram_mb": 256, "min_disk_mb": 100},
        "idempotent": True,
        "timeout_seconds": 300,
        "uninstall": True,
        "sha256": catalogue.get("web-server").sha256,
    }
    assert body[0]["resource_requirements"] == {"min_ram_mb": None, "min_disk_mb": None}


def test_detail_with_inputs(client):
    body = client.get(URL + "web-server/").json()
    inputs = {item["name"]: item for item in body["inputs"]}
    assert list(inputs)[:3] == ["server_name", "http_port", "tls_enabled"]
    assert inputs["server_name"]["validation"] == {
        "pattern": "[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?",
        "max_length": 253,
    }
    assert inputs["tls_key"] == {
        "name": "tls_key",
        "type": "password",
        "label": "Private key",
        "description": "",
        "required": True,
        "default": None,
        "validation": {},
        "step": None,
        "visible_if": "tls_enabled",
        "sensitive": True,
        "generate": False,
    }
    assert inputs["cache_ratio"]["step"] == 0.05
    assert inputs["modules"]["default"] == ["gzip"]


@pytest.mark.parametrize(
    "path",
    [
        "nope/",
        "..%2Fetc/",
        "nginx%2F..%2F..%2Fetc/",
        "..../",
        "%2e%2e/",
        "web-server%00/",
        "nope/schema",
        "nope/validate",
    ],
)
def test_ids_not_in_the_catalogue_are_404(client, path):
    method = client.post if path.endswith("validate") else client.get
    response = method(URL + path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_dot_dot_ids_are_refused_by_the_catalogue(client):
    # A "/" inside an id (encoded or not) matches no route at all: also 404.
    for path in ("../etc/", "..%2F..%2Fetc%2Fpasswd/"):
        assert client.get(URL + path).status_code == 404
    # What does reach the view is looked up in the loaded catalogue only.
    for installer_id in ("..", "..%5C..%5Cetc", "web-server.."):
        response = client.get(URL + installer_id + "/")
        body = response.json()
        assert response.status_code == 404
        assert body["code"] == "not_found"
        assert body["errors"][0]["field"] == "installer"
    assert "'..\\\\..\\\\etc'" in client.get(URL + "..%5C..%5Cetc/").json()["message"]


def test_paths_with_and_without_the_trailing_slash(client):
    for path in ("web-server/schema", "web-server/schema/", "web-server", "web-server/"):
        assert client.get(URL + path).status_code == 200, path
    for path in ("web-server/validate", "web-server/validate/"):
        assert client.post(URL + path, {"server_name": "a.b"}, format="json").status_code == 200


def test_the_inputs_json_schema(client):
    schema = client.get(URL + "web-server/schema").json()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["required"] == ["server_name"]
    assert schema["additionalProperties"] is False
    assert props["server_name"]["pattern"] == "^(?:[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)$"
    assert props["http_port"] == {
        "title": "HTTP port",
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
        "default": 80,
    }
    assert props["certificate"]["x-visible-if"] == "tls_enabled == true"
    assert props["certificate"]["x-required-if-visible"] is True
    assert props["tls_key"]["writeOnly"] is True and props["tls_key"]["x-sensitive"] is True
    assert props["admin_password"]["x-generate"] is True
    assert props["cache_ratio"]["multipleOf"] == 0.05
    assert props["modules"]["items"] == {"enum": ["gzip", "brotli", "status"]}
    assert props["tls_mode"]["enum"] == ["strict", "compatible"]
    assert schema["x-installer"]["id"] == "web-server"


def test_the_json_schema_agrees_with_check_inputs(client):
    """What the published schema accepts, check_inputs accepts, and the other way round,
    on values of the JSON types (form strings are check_inputs' own leniency) without
    conditional inputs (those are the x-visible-if / x-required-if-visible keywords)."""
    validator = jsonschema.Draft202012Validator(client.get(URL + "web-server/schema").json())
    web = catalogue.get("web-server")
    from portal.installers.inputs import InputsInvalid, check_inputs

    samples = [
        {"server_name": "a.b"},
        {"server_name": "A.B"},
        {"server_name": "a.b", "http_port": 0},
        {"server_name": "a.b", "http_port": 8080.0},
        {"server_name": "a.b", "http_port": 80.5},
        {"server_name": "a.b", "cache_ratio": 0.25},
        {"server_name": "a.b", "cache_ratio": 0.33},
        {"server_name": "a.b", "workers": 65},
        {"server_name": "a.b", "modules": ["gzip", "gzip"]},
        {"server_name": "a.b", "modules": ["zstd"]},
        {"server_name": "a.b", "tls_mode": "loose"},
        {"server_name": "a.b", "notes": "x" * 201},
        {"server_name": "a.b", "colour": "red"},
        {"server_name": "a.b", "admin_password": "twelve-chars"},
        {"server_name": "a.b", "admin_password": "short"},
        {},
    ]
    for sample in samples:
        try:
            check_inputs(web, sample)
            accepted = True
        except InputsInvalid:
            accepted = False
        # tls_mode is hidden here (TLS off): check_inputs drops it, so compare without it
        schema_sample = {k: v for k, v in sample.items() if k != "tls_mode"}
        assert validator.is_valid(schema_sample) is accepted, sample


def test_validate_ok(client):
    response = client.post(
        URL + "web-server/validate",
        {
            "server_name": "example.org",
            "tls_enabled": True,
            "certificate": "-----BEGIN",
            "tls_key": "secret-key",
            "http_port": 8080,
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["installer"] == "web-server" and body["version"] == "1.2.0"
    assert body["values"]["http_port"] == 8080 and body["values"]["tls_mode"] == "strict"
    assert "tls_key" not in body["values"] and "secret-key" not in response.content.decode()
    assert body["sensitive"] == ["tls_key"]
    assert body["generated"] == ["admin_password"]
    assert body["hidden"] == []
    assert "upstream" in body["visible"]


def test_validate_400_names_each_input_and_rule(client):
    response = client.post(
        URL + "web-server/validate",
        {"server_name": "Bad Name", "http_port": 70000, "colour": "red", "workers": "x"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    errors = {error["field"]: error for error in body["errors"]}
    assert set(errors) == {"server_name", "http_port", "colour", "workers"}
    assert errors["http_port"] == {
        "field": "http_port",
        "message": "type: a port is 1-65535",
        "code": "type",
    }
    assert errors["colour"]["code"] == "unknown"
    assert errors["server_name"]["message"].startswith("pattern: must match")
    assert body["message"].startswith("colour: unknown")


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2]",
        '"text"',
        '{"server_name": {"a": {"b": [1, 2, {"c": null}]}}}',
        '{"cache_ratio": NaN, "server_name": "a.b"}',
        '{"cache_ratio": Infinity, "server_name": "a.b"}',
        '{"workers": 1e999, "server_name": "a.b"}',
        '{"workers": 123456789012345678901234567890, "server_name": "a.b"}',
        '{"server_name": "' + "a" * 100_000 + '"}',
        '{"server_name": "a\\u0000b"}',
        '{"server_name": "a.b", "notes": "\\ud800"}',
        '{"server_name": "a.b", "\\ud800": 1}',
        '{"": 1}',
        "not json",
    ],
)
def test_hostile_bodies_are_400_not_500(client, body):
    response = client.post(URL + "web-server/validate", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["status"] == 400


def test_form_encoded_validate(client):
    response = client.post(
        URL + "web-server/validate",
        "server_name=a.b&modules=gzip&modules=status&http_port=81",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["values"]["modules"] == ["gzip", "status"]


def test_visibility(client):
    response = client.post(
        URL + "web-server/visibility", {"tls_enabled": True, "certificate": "x"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["hidden"] == []
    response = client.post(
        URL + "web-server/visibility", {"http_port": 443, "tls_enabled": "bogus"}, format="json"
    )
    assert response.json()["hidden"] == ["certificate", "tls_key", "tls_mode", "upstream"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "web-server/"),
        ("get", "web-server/schema"),
        ("post", "web-server/validate"),
        ("post", "web-server/visibility"),
        ("get", "nope/"),
    ],
)
def test_unauthenticated_is_401(api, method, path):
    response = getattr(api, method)(URL + path)
    assert response.status_code == 401


def test_writes_are_not_allowed(client):
    assert client.post(URL, {}, format="json").status_code == 405
    assert client.delete(URL + "web-server/").status_code == 405
