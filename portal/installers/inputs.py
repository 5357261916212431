"""An installer's inputs as a user submits them: the one check the API, the forms and (later)
the install action call, and the environment the script gets.

Inputs are taken in the manifest's order. Each one's ``visible_if`` is evaluated on the
values accepted so far (submitted, else defaulted, coerced to their types); a hidden input is
absent: whatever was sent for it is dropped, not validated, not stored, not passed. A name the
manifest does not define is an error. A password with ``generate: true`` that was not given
is generated and returned in ``Cleaned.generated`` so the caller shows it once; with
``regenerate=False`` (a later run of an installation: the script keeps the password it set)
it is neither generated nor required, and absent; ``regenerate`` may also name the inputs
to generate (an upgrade that adds a ``generate: true`` password generates only that one).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.core.errors import PortalError
from portal.installers import rules
from portal.installers.manifest import Input, Manifest

MAX_UNKNOWN_SHOWN = 20
SHOWN_NAME = 64
FIXED_ENVIRONMENT = {"DEBIAN_FRONTEND": "noninteractive", "PROVISIONING_JOB": "true"}


@dataclass(frozen=True)
class Cleaned:
    values: dict[str, Any] = field(default_factory=dict)  # visible, not sensitive: storable
    secrets: dict[str, Any] = field(default_factory=dict)  # visible, sensitive: never stored
    generated: dict[str, str] = field(default_factory=dict)  # part of secrets: show once
    visible: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()

    def all(self) -> dict[str, Any]:
        return {**self.values, **self.secrets}


class InputsInvalid(PortalError):
    """Every broken input at once: ``errors`` maps an input's name (or ``""`` for the body as
    a whole) to the rule it broke and why."""

    def __init__(self, errors: dict[str, rules.RuleError]):
        name, first = next(iter(errors.items()))
        super().__init__(f"{first.rule}: {first.reason}", field=name or None, code=first.rule)
        self.errors = errors

    @property
    def messages(self) -> dict[str, str]:
        """{input name: "rule: reason"} (``""``: the body as a whole)."""
        return {name: str(error) for name, error in self.errors.items()}


def check_inputs(
    manifest: Manifest, data: object, regenerate: bool | Collection[str] = True
) -> Cleaned:
    """The submitted inputs checked against the manifest; raises InputsInvalid.
    ``regenerate=False``: a ``generate: true`` password not given stays absent; a
    collection: only those it names are generated."""
    if not isinstance(data, Mapping):
        raise InputsInvalid({"": rules.RuleError("type", "the inputs must be an object")})
    errors = _unknown(manifest, data)
    values: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    generated: dict[str, str] = {}
    visible, hidden = [], []
    for spec, shown, value, error in _walk(manifest, data, generate=regenerate):
        if not shown:
            hidden.append(spec.name)
            continue
        visible.append(spec.name)
        if error is not None:
            errors[spec.name] = error
        elif value is not None:
            (secrets if spec.sensitive else values)[spec.name] = value
            if spec.generate and rules.is_empty(data.get(spec.name)):
                generated[spec.name] = value
    if errors:
        raise InputsInvalid(errors)
    return Cleaned(values, secrets, generated, tuple(visible), tuple(hidden))


def visibility(manifest: Manifest, data: object) -> dict[str, bool]:
    """Which inputs the form shows for these values: the same walk as check_inputs, which
    never fails (a bad or unknown value counts as not given)."""
    source = data if isinstance(data, Mapping) else {}
    return {spec.name: shown for spec, shown, _value, _error in _walk(manifest, source)}


def environment(manifest: Manifest, cleaned: Cleaned) -> dict[str, str]:
    """The script's environment without the secrets: UPPERCASE names, booleans as
    true/false, multiselect values comma-separated, and the contract's fixed variables."""
    env = {
        spec.environment_name: as_text(cleaned.values[spec.name])
        for spec in manifest.inputs
        if spec.name in cleaned.values
    }
    return {**env, **FIXED_ENVIRONMENT}


def secret_environment(manifest: Manifest, cleaned: Cleaned) -> dict[str, str]:
    """The sensitive inputs, for the 0600 file the wrapper exports (never argv or stored vars)."""
    return {
        spec.environment_name: as_text(cleaned.secrets[spec.name])
        for spec in manifest.inputs
        if spec.name in cleaned.secrets
    }


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_text(item) for item in value)
    return str(value)


def _walk(
    manifest: Manifest, data: Mapping[Any, Any], generate: bool | Collection[str] = False
) -> Iterator[tuple[Input, bool, Any, rules.RuleError | None]]:
    """(input, visible, coerced value or None, error or None), in definition order."""
    accepted: dict[str, Any] = {}
    for spec in manifest.inputs:
        if spec.visible_if is not None and not spec.visible_if.evaluate(accepted):
            yield spec, False, None, None
            continue
        try:
            wanted = generate if isinstance(generate, bool) else spec.name in generate
            value = _value(spec, data.get(spec.name), wanted)
        except rules.RuleError as error:
            yield spec, True, None, error
            continue
        if value is not None:
            accepted[spec.name] = value
        yield spec, True, value, None


def _value(spec: Input, raw: Any, generate: bool) -> Any:
    if not rules.is_empty(raw):
        return rules.check_value(spec, raw)
    if spec.has_default:
        return rules.check_value(spec, spec.default)
    if spec.generate:
        return rules.generate_password(spec) if generate else None
    if spec.required:
        raise rules.RuleError("required", "this input is required")
    return None


def _unknown(manifest: Manifest, data: Mapping[Any, Any]) -> dict[str, rules.RuleError]:
    known = {spec.name for spec in manifest.inputs}
    unknown = [key for key in data if key not in known]
    errors = {
        _shown(key): rules.RuleError("unknown", "the installer has no such input")
        for key in unknown[:MAX_UNKNOWN_SHOWN]
    }
    if len(unknown) > MAX_UNKNOWN_SHOWN:
        more = len(unknown) - MAX_UNKNOWN_SHOWN
        errors[""] = rules.RuleError("unknown", f"and {more} more unknown inputs")
    return errors


def _shown(key: object) -> str:
    """A submitted name as an error may echo it: bounded, and encodable (a lone surrogate
    from JSON's "\\ud800" would break the response)."""
    return str(key)[:SHOWN_NAME].encode("utf-8", "replace").decode()
