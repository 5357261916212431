"""check_inputs: each type and rule, hidden inputs absent, unknown inputs, generated
passwords, the sensitive split, hostile values; environment()."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.installers import catalogue
from portal.installers.inputs import (
    InputsInvalid,
    check_inputs,
    environment,
    secret_environment,
    visibility,
)
from portal.installers.loader import load_installer

GOOD = {"server_name": "example.org"}


@pytest.fixture
def web():
    return catalogue.get("web-server")


def errors(manifest, data):
    with pytest.raises(InputsInvalid) as refused:
        check_inputs(manifest, data)
    return refused.value.messages


def test_defaults_fill_in_and_hidden_inputs_are_absent(web):
    cleaned = check_inputs(web, GOOD)
    assert cleaned.values == {
        "server_name": "example.org",
        "http_port": 80,
        "tls_enabled": False,
        "modules": ["gzip"],
        "workers": 2,
        "cache_ratio": 0.25,
    }
    assert cleaned.hidden == ("certificate", "tls_key", "tls_mode")
    assert "certificate" not in cleaned.all() and "tls_key" not in cleaned.all()


def test_a_value_sent_for_a_hidden_input_is_dropped_unchecked(web):
    cleaned = check_inputs(web, {**GOOD, "certificate": 12345, "tls_key": ["not", "checked"]})
    assert "certificate" not in cleaned.all() and "tls_key" not in cleaned.all()


def test_visible_inputs_become_required_when_shown(web):
    assert errors(web, {**GOOD, "tls_enabled": True}) == {
        "certificate": "required: this input is required",
        "tls_key": "required: this input is required",
    }


def test_conditional_inputs_in_definition_order(web):
    data = {**GOOD, "tls_enabled": True, "certificate": "-----BEGIN", "tls_key": "k" * 20}
    cleaned = check_inputs(web, data)
    assert cleaned.values["tls_mode"] == "strict"  # visible: tls on and a certificate given
    assert cleaned.secrets["tls_key"] == "k" * 20
    assert "tls_key" not in cleaned.values


def test_visibility_reads_the_defaulted_values(web):
    assert visibility(web, {})["upstream"] is True  # http_port defaults to 80
    assert visibility(web, {"http_port": 443})["upstream"] is False
    assert visibility(web, {"workers": "40"})["upstream"] is False  # coerced before compared
    assert visibility(web, {"http_port": "not a port"})["upstream"] is False  # bad: not given


def test_unknown_inputs_are_errors(web):
    assert errors(web, {**GOOD, "colour": "red"}) == {
        "colour": "unknown: the installer has no such input"
    }


def test_many_unknown_inputs_are_counted_not_listed(web):
    found = errors(web, {**GOOD, **{f"x{i}": 1 for i in range(100)}})
    assert len(found) == 21
    assert found[""] == "unknown: and 80 more unknown inputs"


def test_a_generated_password_is_returned_once_and_kept_secret(web):
    cleaned = check_inputs(web, GOOD)
    password = cleaned.generated["admin_password"]
    assert len(password) == 24 and password.isalnum()
    assert cleaned.secrets["admin_password"] == password
    assert "admin_password" not in cleaned.values
    assert check_inputs(web, GOOD).generated["admin_password"] != password


def test_a_later_run_neither_generates_nor_requires_a_generated_password(make_installer):
    # required, as the repo's postgresql and redis passwords are: a first install generates it
    manifest = load_installer(
        make_installer(
            inputs=[
                {"name": "owner", "type": "string", "label": "Owner", "required": True},
                {
                    "name": "password",
                    "type": "password",
                    "label": "Password",
                    "required": True,
                    "sensitive": True,
                    "generate": True,
                    "validation": {"min_length": 12},
                },
            ]
        )
    )
    first = check_inputs(manifest, {"owner": "app"})
    assert first.generated.keys() == first.secrets.keys() == {"password"}
    later = check_inputs(manifest, {"owner": "app", "password": ""}, regenerate=False)
    assert (later.values, later.secrets, later.generated) == ({"owner": "app"}, {}, {})
    assert "PASSWORD" not in {**environment(manifest, later), **secret_environment(manifest, later)}
    assert later.visible == ("owner", "password")  # absent because not given, not hidden
    with pytest.raises(InputsInvalid) as refused:
        check_inputs(manifest, {}, regenerate=False)
    assert refused.value.messages == {"owner": "required: this input is required"}


def test_a_later_run_given_a_password_sets_it_checked(web):
    rotated = check_inputs(web, {**GOOD, "admin_password": "rotated on purpose"}, regenerate=False)
    assert rotated.secrets == {"admin_password": "rotated on purpose"}
    assert rotated.generated == {}
    with pytest.raises(InputsInvalid) as refused:
        check_inputs(web, {**GOOD, "admin_password": "short"}, regenerate=False)
    assert refused.value.messages == {"admin_password": "min_length: at least 12 characters"}


def test_a_given_password_is_not_generated(web):
    cleaned = check_inputs(web, {**GOOD, "admin_password": "correct horse battery"})
    assert cleaned.generated == {}
    assert cleaned.secrets == {"admin_password": "correct horse battery"}
    assert errors(web, {**GOOD, "admin_password": "short"}) == {
        "admin_password": "min_length: at least 12 characters"
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("server_name", "Example.org", "pattern: must match"),
        ("server_name", "a" * 254, "max_length: at most 253 characters"),
        ("server_name", 42, "type: must be a string, not a number"),
        ("server_name", "a\nb", "type: must be one line"),
        ("server_name", "a\x00b", "type: must not contain NUL characters"),
        ("notes", "a\ud800b", "type: must be valid Unicode (no lone surrogates)"),
        ("http_port", 0, "type: a port is 1-65535"),
        ("http_port", 65536, "type: a port is 1-65535"),
        ("http_port", 80.5, "type: must be a whole number, not a fraction"),
        ("http_port", True, "type: must be a whole number, not a boolean"),
        ("http_port", "80x", "type: must be a whole number, not a string"),
        ("workers", 0, "min_value: at least 1"),
        ("workers", 65, "max_value: at most 64"),
        ("workers", 10**100, "max_value: at most 64"),
        ("cache_ratio", 0.33, "step: must be 0 plus a multiple of 0.05"),
        ("cache_ratio", 1.5, "max_value: at most 1"),
        ("cache_ratio", math.nan, "type: must be a finite number"),
        ("cache_ratio", math.inf, "type: must be a finite number"),
        ("cache_ratio", "NaN", "type: must be a number, not a string"),
        ("cache_ratio", 1e308, "step:"),
        ("tls_enabled", "yes", "type: must be true or false, not a string"),
        ("tls_enabled", 1, "type: must be true or false, not a number"),
        ("modules", "gzip", "type: must be a list, not a string"),
        ("modules", ["gzip", "gzip"], "unique: each value at most once"),
        ("modules", ["zstd"], "allowed_values: must be one of 'gzip', 'brotli', 'status'"),
        ("modules", [["gzip"]], "type: must be one of the allowed values, not a list"),
        ("modules", ["gzip"] * 2000, "max_length: at most 1000 values"),
        ("contact", "not-an-address", "format: must be an email address"),
        ("upstream", "ftp://example.org", "format: must be an http or https URL"),
        ("upstream", "javascript:alert(1)", "format: must be an http or https URL"),
        ("notes", "x" * 201, "max_length: at most 200 characters"),
        ("notes", "x" * 10**6, "max_length: at most 100000 characters"),
        ("notes", {"nested": {"object": 1}}, "type: must be a string, not an object"),
        ("server_name", None, "required: this input is required"),
        ("server_name", "", "required: this input is required"),
    ],
)
def test_each_rule_names_itself(web, name, value, expected):
    found = errors(web, {**GOOD, name: value})
    assert list(found) == [name]
    assert found[name].startswith(expected), found


def test_select_values(web):
    data = {**GOOD, "tls_enabled": True, "certificate": "-----BEGIN", "tls_key": "k"}
    assert check_inputs(web, {**data, "tls_mode": "compatible"}).values["tls_mode"] == "compatible"
    assert errors(web, {**data, "tls_mode": "loose"}) == {
        "tls_mode": "allowed_values: must be one of 'strict', 'compatible'"
    }
    assert errors(web, {**data, "tls_mode": ["strict"]}) == {
        "tls_mode": "type: must be one value, not a list"
    }


def test_form_strings_are_coerced(web):
    cleaned = check_inputs(
        web,
        {
            **GOOD,
            "http_port": "8080",
            "tls_enabled": "false",
            "workers": " 4 ",
            "cache_ratio": "0.3",
        },
    )
    assert cleaned.values["http_port"] == 8080
    assert cleaned.values["tls_enabled"] is False
    assert cleaned.values["workers"] == 4
    assert cleaned.values["cache_ratio"] == 0.3


def test_a_whole_float_is_an_integer_as_in_json_schema(web):
    cleaned = check_inputs(web, {**GOOD, "http_port": 8080.0})
    assert cleaned.values["http_port"] == 8080 and isinstance(cleaned.values["http_port"], int)


def test_every_error_at_once(web):
    found = errors(web, {"http_port": 0, "workers": "many", "colour": 1})
    assert set(found) == {"colour", "server_name", "http_port", "workers"}


@pytest.mark.parametrize("body", [None, [], "inputs", 42, [["server_name", "x"]]])
def test_inputs_must_be_an_object(web, body):
    assert errors(web, body) == {"": "type: the inputs must be an object"}


def test_odd_keys_are_unknown_not_crashes(web):
    found = errors(web, {**GOOD, 1: "x", "a" * 1000: "y", "../etc": "z"})
    assert set(found) == {"1", "a" * 64, "../etc"}


def test_the_environment(web):
    cleaned = check_inputs(
        web, {**GOOD, "modules": ["gzip", "status"], "admin_password": "s3cret-s3cret", "notes": ""}
    )
    assert environment(web, cleaned) == {
        "SERVER_NAME": "example.org",
        "HTTP_PORT": "80",
        "TLS_ENABLED": "false",
        "MODULES": "gzip,status",
        "WORKERS": "2",
        "CACHE_RATIO": "0.25",
        "DEBIAN_FRONTEND": "noninteractive",
        "PROVISIONING_JOB": "true",
    }
    assert secret_environment(web, cleaned) == {"ADMIN_PASSWORD": "s3cret-s3cret"}


def test_an_installer_without_inputs():
    minimal = catalogue.get("minimal")
    assert check_inputs(minimal, {}).all() == {}
    assert environment(minimal, check_inputs(minimal, {})) == {
        "DEBIAN_FRONTEND": "noninteractive",
        "PROVISIONING_JOB": "true",
    }


# Any code point, and often the ones that break encoders and parsers.
any_text = st.text(
    st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\x00", "\n", "é"]),
    max_size=30,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=8,
)
WEB_INPUTS = [
    "server_name",
    "http_port",
    "tls_enabled",
    "certificate",
    "tls_key",
    "tls_mode",
    "admin_password",
    "modules",
    "workers",
    "cache_ratio",
    "contact",
    "upstream",
    "notes",
]
bodies = st.tuples(
    st.booleans(),
    st.dictionaries(
        st.sampled_from(WEB_INPUTS) | any_text,
        json_values | st.sampled_from(["80", "true", "gzip", "0.5", "a.b", "x" * 300]),
        max_size=8,
    ),
).map(lambda pair: {"server_name": "a.b", **pair[1]} if pair[0] else pair[1])


def _answerable(web, body):
    """check_inputs cleans or refuses ``body``, and either answer can be sent as JSON."""
    visibility(web, body)
    try:
        cleaned = check_inputs(web, body)
    except InputsInvalid as refused:
        assert refused.errors
        errors = {name: str(error) for name, error in refused.errors.items()}
        text = json.dumps(errors, ensure_ascii=False)  # as DRF renders
    else:
        assert set(cleaned.all()) <= set(cleaned.visible)
        assert not set(cleaned.values) & set(cleaned.secrets)
        text = json.dumps(cleaned.all(), allow_nan=False, ensure_ascii=False)
        environment(web, cleaned)
    text.encode("utf-8")


HOSTILE = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "\u2028",
    "x" * 200_000,
    "${IFS}$(id)`id`;|&",
    "{{ lookup('pipe', 'id') }}",
    "1e999",
    "-0",
    "NaN",
    math.nan,
    -math.inf,
    10**30,
    -(2**63),
    [[[[]]]],
    {"a": {"b": None}},
    [None, True, 1.5, "x"],
]


@pytest.mark.parametrize("name", WEB_INPUTS)
def test_hostile_values_for_every_input_are_answerable(name):
    web = catalogue.get("web-server")
    tls = {"tls_enabled": True, "certificate": "-----BEGIN", "tls_key": "k"}  # all visible
    for value in HOSTILE:
        _answerable(web, {**GOOD, name: value})
        _answerable(web, {**GOOD, **tls, name: value})
        _answerable(web, {**GOOD, value if isinstance(value, str) else name: 1})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(WEB_INPUTS), json_values)
def test_any_value_for_one_input_is_cleaned_or_refused(name, value):
    _answerable(catalogue.get("web-server"), {"server_name": "a.b", name: value})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_any_json_body_is_cleaned_or_refused_never_crashes(body):
    _answerable(catalogue.get("web-server"), body)
