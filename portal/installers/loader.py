"""Read the catalogue directory: each ``<id>/manifest.yml`` through the JSON Schema shipped
in the repo (``installers/manifest.schema.json``, draft 2020-12, checked with the
``jsonschema`` library), then the lint; what passes becomes a :class:`Manifest`, what does not
is a list of :class:`Problem` and stays out of the catalogue.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from django.conf import settings

from portal.installers import lint
from portal.installers.expressions import ExpressionError, parse
from portal.installers.manifest import Input, Manifest, Problem

MANIFEST = "manifest.yml"
DEFAULT_SCRIPT = "install.sh"
SCHEMA_PATH = Path(__file__).resolve().parent.parent.parent / "installers" / "manifest.schema.json"
MAX_MANIFEST_BYTES = 256 * 1024
MAX_FILES = 1000
MAX_TOTAL_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Loaded:
    directory: Path
    manifests: dict[str, Manifest] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


class Invalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@cache
def schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load_catalogue(root: Path) -> Loaded:
    """Every installer directory under ``root``; hidden and ``_``-prefixed entries and plain
    files (README.md, the schema) are not installers."""
    manifests: dict[str, Manifest] = {}
    problems: list[Problem] = []
    if not root.is_dir():
        return Loaded(root, {}, (Problem(display(root), "", "is not a directory"),))
    for directory in sorted(root.iterdir()):
        if directory.name.startswith((".", "_")) or not directory.is_dir():
            continue
        try:
            manifest = load_installer(directory)
        except Invalid as exc:
            problems += exc.problems
        else:
            manifests[manifest.id] = manifest
    return Loaded(root, manifests, tuple(problems))


def load_installer(directory: Path) -> Manifest:
    file = display(directory / MANIFEST)
    data = _read(directory, file)
    found = _schema_problems(data)
    if found:
        raise Invalid([Problem(file, where, message) for where, message in found])
    inputs, found = _inputs(data.get("inputs") or [])
    found += lint.lint({"install_script": DEFAULT_SCRIPT, **data}, inputs, directory)
    if found:
        raise Invalid([Problem(file, where, message) for where, message in found])
    files, digest = _fingerprint(directory, file)
    return _manifest(data, inputs, directory, files, digest)


def display(path: Path) -> str:
    """``installers/nginx/manifest.yml`` for the repo's catalogue; absolute elsewhere."""
    base = Path(settings.BASE_DIR).resolve()
    resolved = path.absolute()
    return str(resolved.relative_to(base)) if resolved.is_relative_to(base) else str(resolved)


def _read(directory: Path, file: str) -> dict[str, Any]:
    path = directory / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise Invalid([Problem(file, "", "missing (or not a regular file)")])
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise Invalid([Problem(file, "", f"larger than {MAX_MANIFEST_BYTES} bytes")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise Invalid([Problem(file, "", f"not valid YAML: {_one_line(exc)}")]) from None
    if not isinstance(data, dict):
        raise Invalid([Problem(file, "", "must be a mapping (key: value lines)")])
    return data


def _schema_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    errors = sorted(schema_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    return [(_json_path(error.absolute_path), _schema_message(error)) for error in errors]


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_message(error: jsonschema.ValidationError) -> str:
    # "{...} should not be valid under {'required': ['step']}" says little: name the key.
    refused = error.validator_value if error.validator == "not" else None
    if isinstance(refused, dict) and refused.get("required") and isinstance(error.instance, dict):
        return f"{refused['required'][0]}: not for inputs of type {error.instance.get('type')!r}"
    if isinstance(refused, dict) and "enum" in refused:
        return f"{error.instance!r} is a reserved word"
    return _one_line(error.message)


def _inputs(raw: list[dict[str, Any]]) -> tuple[list[Input], list[tuple[str, str]]]:
    inputs, found = [], []
    for index, item in enumerate(raw):
        expression = None
        if "visible_if" in item:
            try:
                expression = parse(item["visible_if"])
            except ExpressionError as exc:
                found.append((f"inputs[{index}].visible_if", lint.describe(exc)))
        inputs.append(_input(item, expression))
    return inputs, found


def _input(item: dict[str, Any], expression: Any) -> Input:
    validation = item.get("validation") or {}
    allowed = validation.get("allowed_values")
    default = item.get("default")
    return Input(
        name=item["name"],
        type=item["type"],
        label=item["label"],
        description=item.get("description", ""),
        required=item.get("required", False),
        default=list(default) if isinstance(default, list) else default,
        pattern=validation.get("pattern"),
        min_length=validation.get("min_length"),
        max_length=validation.get("max_length"),
        min_value=validation.get("min_value"),
        max_value=validation.get("max_value"),
        allowed_values=tuple(allowed) if allowed is not None else None,
        step=item.get("step"),
        visible_if=expression,
        sensitive=item.get("sensitive", item["type"] == "password"),
        generate=item.get("generate", False),
    )


def _fingerprint(directory: Path, file: str) -> tuple[tuple[str, ...], str]:
    """Every file of the installer (what the run copies to the node), hashed with its path:
    a job records this and the version it ran."""
    root = directory.resolve()
    files, total = [], 0
    for path in sorted(directory.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        if not path.resolve().is_relative_to(root) or not path.resolve().is_file():
            where = str(path.relative_to(directory))
            raise Invalid([Problem(file, "", f"{where}: a link leading out or not a file")])
        files.append(path)
        total += path.stat().st_size
    if len(files) > MAX_FILES or total > MAX_TOTAL_BYTES:
        raise Invalid([Problem(file, "", f"more than {MAX_FILES} files or 64 MiB")])
    digest = hashlib.sha256()
    names = []
    for path in files:
        name = path.relative_to(directory).as_posix()
        content = path.read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
        names.append(name)
    return tuple(names), digest.hexdigest()


def _manifest(
    data: dict[str, Any], inputs: list[Input], directory: Path, files: tuple[str, ...], digest: str
) -> Manifest:
    os_requirements = data["os_requirements"]
    resources = data.get("resource_requirements") or {}
    return Manifest(
        id=data["id"],
        name=data["name"],
        version=data["version"],
        description=data["description"],
        category=data["category"],
        author=data["author"],
        os_family=tuple(os_requirements["family"]),
        os_min_version=os_requirements["min_version"],
        install_script=data.get("install_script", DEFAULT_SCRIPT),
        uninstall_script=data.get("uninstall_script"),
        timeout_seconds=data["timeout_seconds"],
        idempotent=data["idempotent"],
        min_ram_mb=resources.get("min_ram_mb"),
        min_disk_mb=resources.get("min_disk_mb"),
        inputs=tuple(inputs),
        directory=directory,
        sha256=digest,
        files=files,
    )


def _one_line(exc: object) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()
