"""The manifest schema and the catalogue lint: each rule, each message naming file and path."""

import json
import os

import jsonschema
import pytest

from portal.installers.choices import InputType
from portal.installers.loader import SCHEMA_PATH, Invalid, load_catalogue, load_installer
from tests.installers.conftest import CATALOGUE


def problems(directory):
    with pytest.raises(Invalid) as refused:
        load_installer(directory)
    return [str(problem) for problem in refused.value.problems]


def only_problem(directory):
    found = problems(directory)
    assert len(found) == 1, found
    return found[0]


def test_the_schema_is_draft_2020_12_and_knows_every_input_type():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["input"]["properties"]["type"]["enum"] == sorted(
        InputType.values, key=schema["$defs"]["input"]["properties"]["type"]["enum"].index
    )
    assert set(schema["$defs"]["input"]["properties"]["type"]["enum"]) == set(InputType.values)


def test_the_test_catalogue_is_valid():
    loaded = load_catalogue(CATALOGUE)
    assert loaded.problems == ()
    assert sorted(loaded.manifests) == ["minimal", "web-server"]
    web = loaded.manifests["web-server"]
    assert web.uninstall_script == "uninstall.sh"
    assert web.files == ("install.sh", "manifest.yml", "uninstall.sh")
    assert len(web.sha256) == 64
    assert loaded.manifests["minimal"].install_script == "install.sh"  # the default


def test_a_valid_manifest_loads(make_installer):
    manifest = load_installer(
        make_installer(inputs=[{"name": "a", "type": "string", "label": "A"}])
    )
    assert manifest.id == "app" and manifest.inputs[0].name == "a"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": "App_1"}, "id: 'App_1' does not match"),
        ({"id": "a--b"}, "id: 'a--b' does not match"),
        ({"version": 1.1}, "version: 1.1 is not of type 'string'"),
        ({"os_requirements": {"family": []}}, "os_requirements: 'min_version' is a required"),
        ({"os_requirements": {"family": [], "min_version": "12"}}, "os_requirements.family: [] "),
        ({"timeout_seconds": 0}, "timeout_seconds: 0 is less than the minimum of 1"),
        ({"idempotent": "yes please"}, "idempotent: 'yes please' is not of type 'boolean'"),
        ({"install_script": "../x.sh"}, "install_script: '../x.sh' does not match"),
        ({"install_script": "bin/x.sh"}, "install_script: 'bin/x.sh' does not match"),
        ({"uninstall_script": ".hidden"}, "uninstall_script: '.hidden' does not match"),
        ({"colour": "red"}, "Additional properties are not allowed ('colour' was unexpected)"),
        ({"resource_requirements": {"min_ram_mb": -1}}, "resource_requirements.min_ram_mb: -1"),
    ],
)
def test_schema_problems_name_the_path(make_installer, fields, expected):
    found = problems(make_installer(**fields))
    assert any(expected in problem for problem in found), found
    assert all(
        problem.startswith(str(make_installer().parent / "app" / "manifest.yml"))
        for problem in found
    )


def test_a_missing_required_key(make_installer):
    directory = make_installer(raw="id: app\nname: App\n")
    found = problems(directory)
    assert any("'version' is a required property" in problem for problem in found)


def test_yaml_that_does_not_parse_or_is_not_a_mapping(make_installer):
    assert "not valid YAML" in only_problem(make_installer(raw="id: [unclosed\n"))
    assert "must be a mapping" in only_problem(make_installer(raw="- a list\n"))


def _input(**fields):
    return {"name": "value", "type": "string", "label": "Value", **fields}


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([_input(name="Bad-Name")], "inputs[0].name: 'Bad-Name' does not match"),
        ([_input(name="true")], "inputs[0].name: 'true' is a reserved word"),
        ([_input(type="colour")], "inputs[0].type: 'colour' is not one of"),
        ([_input(step=1)], "inputs[0]: step: not for inputs of type 'string'"),
        ([_input(generate=True)], "inputs[0]: generate: not for inputs of type 'string'"),
        ([_input(type="select")], "inputs[0]: 'validation' is a required property"),
        ([_input(validation={"min_value": 1})], "inputs[0].validation: 'min_value' is not one of"),
        ([_input(type="boolean", validation={"pattern": "x"})], "inputs[0].validation: 'pattern'"),
        ([_input(type="number", step=0)], "inputs[0].step: 0 is less than or equal to the minimum"),
        ([_input(default={"a": 1})], "inputs[0].default: {'a': 1} is not valid under any"),
    ],
)
def test_input_schema_problems(make_installer, inputs, expected):
    found = problems(make_installer(inputs=inputs))
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (
            [_input(name="a", visible_if="b == 1"), _input(name="b")],
            "inputs[0].visible_if: 'b' is not an input defined before this one",
        ),
        (
            [_input(name="a", visible_if="a == 'x'")],
            "inputs[0].visible_if: 'a' is this input itself (a cycle)",
        ),
        (
            [_input(name="a", visible_if="nope")],
            "inputs[0].visible_if: 'nope' is not an input defined before this one",
        ),
        (
            [_input(name="a"), _input(name="b", visible_if="a == 1 or a.b == 'X'")],
            "inputs[1].visible_if: does not parse at character 11: attribute access is not allowed",
        ),
        (
            [_input(validation={"pattern": "[a-z"})],
            "inputs[0].validation.pattern: does not compile: unterminated character set",
        ),
        (
            [_input(default="ABC", validation={"pattern": "[a-z]+"})],
            "inputs[0].default: pattern: must match [a-z]+ (the whole value)",
        ),
        (
            [_input(default="toolong", validation={"max_length": 3})],
            "inputs[0].default: max_length: at most 3 characters",
        ),
        (
            [_input(type="integer", default="many")],
            "inputs[0].default: type: must be a whole number, not a string",
        ),
        (
            [_input(type="select", default="c", validation={"allowed_values": ["a", "b"]})],
            "inputs[0].default: allowed_values: must be one of 'a', 'b'",
        ),
        (
            [_input(default="c", validation={"allowed_values": ["a", "b"]})],
            "inputs[0].default: allowed_values: must be one of 'a', 'b'",
        ),
        (
            [_input(type="multiselect", default=["a", "z"], validation={"allowed_values": ["a"]})],
            "inputs[0].default: allowed_values: must be one of 'a'",
        ),
        (
            [_input(type="integer", validation={"allowed_values": [1, "two"]})],
            "inputs[0].validation.allowed_values[1]: type: must be a whole number",
        ),
        ([_input(type="port", default=70000)], "inputs[0].default: type: a port is 1-65535"),
        (
            [_input(type="port", validation={"min_value": 0})],
            "inputs[0].validation.min_value: a port is 1-65535",
        ),
        (
            [_input(type="port", validation={"max_value": 65536})],
            "inputs[0].validation.max_value: a port is 1-65535",
        ),
        (
            [_input(validation={"min_length": 5, "max_length": 2})],
            "inputs[0].validation.min_length: is greater than max_length",
        ),
        (
            [_input(type="integer", validation={"min_value": 5, "max_value": 2})],
            "inputs[0].validation.min_value: is greater than max_value",
        ),
        (
            [_input(type="password", default="hunter2")],
            "inputs[0].default: a password has no default",
        ),
        (
            [_input(type="password", sensitive=False)],
            "inputs[0].sensitive: a password is always sensitive",
        ),
        (
            [_input(type="password", generate=True, validation={"pattern": "[0-9]+"})],
            "inputs[0].generate: a generated password breaks pattern",
        ),
        ([_input(), _input()], "inputs[1].name: 'value' is defined twice"),
        (
            [_input(type="multiselect", validation={"allowed_values": ["a", "b,c"]})],
            "inputs[0].validation.allowed_values[1]: a multiselect value has no comma",
        ),
        ([_input(name="ld_preload")], "inputs[0].name: LD_PRELOAD is a reserved environment"),
        ([_input(name="path")], "inputs[0].name: PATH is a reserved environment variable"),
        (
            [_input(type="number", step=0.5, default=0.3)],
            "inputs[0].default: step: must be 0 plus a multiple of 0.5",
        ),
        (
            [_input(type="email", default="not-an-address")],
            "inputs[0].default: format: must be an email address",
        ),
    ],
)
def test_lint_rules(make_installer, inputs, expected):
    found = problems(make_installer(inputs=inputs))
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("tls == 'true'", "at 8: tls is never 'true' (a boolean input)"),
        ("tls == 1", "at 8: tls is never 1 (a boolean input)"),
        ("port == '80'", "at 9: port is never '80' (a port input)"),
        ("port == true", "at 9: port is never true (a port input)"),
        ("'x' != name", "at 1: name is never 'x' (not one of its allowed_values: 'a', 'b')"),
        ("mode in ['a', 'strit']", "at 15: mode is never 'strit' (not one of its allowed_values"),
        ("level == 'high'", "at 10: level is never 'high' (not one of its allowed_values: 1, 2)"),
    ],
)
def test_visible_if_compares_only_with_possible_values(make_installer, condition, expected):
    inputs = [
        _input(name="tls", type="boolean"),
        _input(name="port", type="port"),
        _input(name="name", validation={"allowed_values": ["a", "b"]}),
        _input(name="mode", type="select", validation={"allowed_values": ["a", "strict"]}),
        _input(name="level", type="select", validation={"allowed_values": [1, 2]}),
        _input(name="shown", visible_if=condition),
    ]
    problem = only_problem(make_installer(inputs=inputs))
    assert f"inputs[5].visible_if: {expected}" in problem


def test_possible_comparisons_pass(make_installer):
    inputs = [
        _input(name="tls", type="boolean"),
        _input(name="port", type="port"),
        _input(name="level", type="select", validation={"allowed_values": [1, 2]}),
        _input(name="tags", type="multiselect", validation={"allowed_values": ["a"]}),
        _input(name="shown", visible_if="tls == true and port in [80, 443.0] and level != 2"),
        _input(name="more", visible_if="'a' in tags and port > 1024 and not tls"),
    ]
    load_installer(make_installer(inputs=inputs))


def test_a_password_is_sensitive_without_saying_so(make_installer):
    manifest = load_installer(make_installer(inputs=[_input(type="password")]))
    assert manifest.inputs[0].sensitive is True


def test_the_id_is_the_directory_name(make_installer):
    problem = only_problem(make_installer(directory="other"))
    assert problem.endswith("id: 'app' must equal the directory's name 'other'")


def test_scripts_must_exist_in_the_directory(make_installer):
    assert only_problem(make_installer(scripts=())).endswith(
        "install_script: 'install.sh' is not in app/"
    )
    directory = make_installer(uninstall_script="gone.sh")
    assert only_problem(directory).endswith("uninstall_script: 'gone.sh' is not in app/")


def test_a_script_may_not_be_a_link_out_of_the_directory(make_installer, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\n")
    directory = make_installer(scripts=())
    os.symlink(outside, directory / "install.sh")
    assert "install_script: 'install.sh' is a link leading out of app/" in problems(directory)[0]


def test_a_script_must_be_a_regular_file(make_installer):
    directory = make_installer(scripts=())
    (directory / "install.sh").mkdir()
    assert only_problem(directory).endswith("install_script: 'install.sh' is not a regular file")


def test_any_file_linking_out_is_refused(make_installer, tmp_path):
    (tmp_path / "secret").write_text("x")
    directory = make_installer()
    os.symlink(tmp_path / "secret", directory / "data")
    assert "data: a link leading out or not a file" in only_problem(directory)


def test_the_hash_covers_every_file(make_installer):
    directory = make_installer()
    before = load_installer(directory).sha256
    (directory / "install.sh").write_text("#!/bin/sh\nexit 1\n")
    changed = load_installer(directory).sha256
    (directory / "helper.conf").write_text("x")
    added = load_installer(directory)
    assert len({before, changed, added.sha256}) == 3
    assert "helper.conf" in added.files


def test_a_catalogue_keeps_the_good_and_names_the_bad(make_installer):
    good = make_installer()
    make_installer(directory="broken", raw="id: broken\n")
    (good.parent / "README.md").write_text("not an installer")
    (good.parent / "_shared").mkdir()
    loaded = load_catalogue(good.parent)
    assert list(loaded.manifests) == ["app"]
    assert loaded.problems and all("broken/manifest.yml" in str(p) for p in loaded.problems)


def test_a_directory_without_a_manifest_is_a_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    loaded = load_catalogue(tmp_path)
    assert [str(p) for p in loaded.problems] == [
        f"{tmp_path}/empty/manifest.yml: missing (or not a regular file)"
    ]


def test_an_id_the_pages_use_is_reserved(make_installer):
    directory = make_installer(directory="installations", id="installations")
    assert only_problem(directory) == (
        f"{directory}/manifest.yml: id: 'installations' is reserved (a path of the installers' "
        "pages)"
    )
