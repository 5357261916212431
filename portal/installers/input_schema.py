"""An installer's inputs as a JSON Schema (draft 2020-12): ``GET /api/installers/{id}/schema``.

Generated from the same manifest that ``inputs.check_inputs`` reads, rule for rule. What
JSON Schema cannot express travels in ``x-`` keywords: ``x-visible-if`` (the expression; a
hidden input is absent), ``x-required-if-visible``, ``x-sensitive``, ``x-generate``, and
``x-step`` when a number's steps do not start at 0. ``pattern`` is the manifest's Python
pattern anchored (``^(?:…)$``, as check_inputs matches the whole value); ``x-python-pattern``
is the original for clients whose regex dialect differs. Form posts may also send numbers and
booleans as their canonical strings ("42", "true"); the schema shows the JSON types.
``multipleOf`` means what JSON Schema says, an exact (decimal) multiple, as check_inputs
checks it: 0.35 is a multiple of 0.05. Validators that divide binary floats (python's
jsonschema) refuse such values; the API's validate endpoint is the reference.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from portal.installers import rules
from portal.installers.manifest import Input, Manifest

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def input_schema(manifest: Manifest) -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "title": f"{manifest.name} {manifest.version}",
        "type": "object",
        "additionalProperties": False,
        "properties": {spec.name: _property(spec) for spec in manifest.inputs},
        "required": [spec.name for spec in manifest.inputs if _always_required(spec)],
        "x-installer": {"id": manifest.id, "version": manifest.version, "sha256": manifest.sha256},
    }


def _always_required(spec: Input) -> bool:
    return spec.required and spec.visible_if is None and not spec.has_default and not spec.generate


def _property(spec: Input) -> dict[str, Any]:
    prop: dict[str, Any] = {"title": spec.label}
    if spec.description:
        prop["description"] = spec.description
    prop.update(_TYPES[spec.type](spec))
    if spec.allowed_values is not None and spec.type not in ("select", "multiselect"):
        prop["enum"] = list(spec.allowed_values)
    if spec.has_default and not spec.sensitive:
        prop["default"] = spec.default
    if spec.visible_if is not None:
        prop["x-visible-if"] = spec.visible_if.source
        if spec.required and not spec.has_default and not spec.generate:
            prop["x-required-if-visible"] = True
    if spec.sensitive:
        prop.update({"writeOnly": True, "x-sensitive": True})
    if spec.generate:
        prop["x-generate"] = True
    return prop


def _string(spec: Input) -> dict[str, Any]:
    limit = rules.MAX_TEXT if spec.type == "text" else rules.MAX_STRING
    prop: dict[str, Any] = {
        "type": "string",
        "maxLength": min(limit, spec.max_length) if spec.max_length is not None else limit,
    }
    if spec.min_length is not None:
        prop["minLength"] = spec.min_length
    if spec.pattern is not None:
        prop["pattern"] = f"^(?:{spec.pattern})$"
        prop["x-python-pattern"] = spec.pattern
    formats = {"email": "email", "url": "uri", "password": "password"}
    if spec.type in formats:
        prop["format"] = formats[spec.type]
    if spec.type == "text":
        prop["x-multiline"] = True
    return prop


def _integer(spec: Input) -> dict[str, Any]:
    low, high = rules.PORTS if spec.type == "port" else (None, None)
    minimum = _tighter(max, low, spec.min_value)
    maximum = _tighter(min, high, spec.max_value)
    prop: dict[str, Any] = {"type": "integer"}
    prop.update({"minimum": minimum} if minimum is not None else {})
    prop.update({"maximum": maximum} if maximum is not None else {})
    return prop


def _tighter(pick: Any, first: Any, second: Any) -> Any:
    given = [value for value in (first, second) if value is not None]
    return pick(given) if given else None


def _number(spec: Input) -> dict[str, Any]:
    prop = _integer(spec) | {"type": "number"}
    if spec.step is not None:
        base = spec.min_value or 0
        if Decimal(str(base)) % Decimal(str(spec.step)) == 0:
            prop["multipleOf"] = spec.step
        else:
            prop["x-step"] = {"step": spec.step, "from": base}
    return prop


def _boolean(spec: Input) -> dict[str, Any]:
    return {"type": "boolean"}


def _select(spec: Input) -> dict[str, Any]:
    return {"enum": list(spec.allowed_values or ())}


def _multiselect(spec: Input) -> dict[str, Any]:
    prop: dict[str, Any] = {
        "type": "array",
        "items": {"enum": list(spec.allowed_values or ())},
        "uniqueItems": True,
    }
    if spec.min_length is not None:
        prop["minItems"] = spec.min_length
    if spec.max_length is not None:
        prop["maxItems"] = spec.max_length
    return prop


_TYPES = {
    "string": _string,
    "text": _string,
    "password": _string,
    "email": _string,
    "url": _string,
    "integer": _integer,
    "port": _integer,
    "number": _number,
    "boolean": _boolean,
    "select": _select,
    "multiselect": _multiselect,
}
