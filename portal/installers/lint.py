"""The catalogue lint: what the JSON Schema cannot say about a manifest.

- ``visible_if`` parses, and reads only inputs defined before it (so no cycles: an input
  that reads itself is named as one); it compares an input only with values that input can
  have (``tls == "true"`` for a boolean, a select's value it does not offer: always false);
- ``validation.pattern`` compiles with Python's ``re``; values must match it whole
  (``re.fullmatch``: ``^`` and ``$`` are implied, writing them changes nothing);
- a default passes its own input's rules, so ``allowed_values`` contains it and a port's is
  1-65535; each ``allowed_values`` entry has the input's type;
- ports' ``min_value``/``max_value`` lie in 1-65535; ``min_*`` <= ``max_*``;
- passwords have no default and are always sensitive; a generated one passes the pattern;
- input names are unique and none becomes a reserved environment variable (LD_PRELOAD, PATH);
  a multiselect's values have no comma (the script gets them comma-separated);
- the id is the directory's name and not a word the pages' paths use (``installations``);
  the scripts are plain regular files inside the directory.

Each problem names the file and the path inside it (``inputs[2].default``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from portal.installers import rules
from portal.installers.expressions import ExpressionError
from portal.installers.manifest import (
    RESERVED_ENVIRONMENT,
    RESERVED_ENVIRONMENT_PREFIXES,
    Input,
)

Found = list[tuple[str, str]]  # (where, message)
# Paths under /installers/ that are not installers (portal/installers/urls.py).
RESERVED_IDS = frozenset({"installations"})


def lint(data: dict[str, Any], inputs: list[Input], directory: Path) -> Found:
    found: Found = []
    if data["id"] != directory.name:
        found.append(("id", f"{data['id']!r} must equal the directory's name {directory.name!r}"))
    if data["id"] in RESERVED_IDS:
        found.append(("id", f"{data['id']!r} is reserved (a path of the installers' pages)"))
    for key in ("install_script", "uninstall_script"):
        if key in data:
            found += _script(key, data[key], directory)
    defined: dict[str, Input] = {}
    for index, spec in enumerate(inputs):
        where = f"inputs[{index}]"
        found += [(f"{where}.{key}", message) for key, message in _input(spec, defined)]
        defined.setdefault(spec.name, spec)
    return found


def check_expression_names(spec: Input, defined: Collection[str]) -> list[str]:
    """visible_if reads only inputs defined before ``spec``."""
    if spec.visible_if is None:
        return []
    problems = []
    for name in sorted(spec.visible_if.names):
        if name == spec.name:
            problems.append(f"{name!r} is this input itself (a cycle)")
        elif name not in defined:
            problems.append(f"{name!r} is not an input defined before this one")
    return problems


def _script(key: str, name: str, directory: Path) -> Found:
    path = directory / name
    if not path.exists() and not path.is_symlink():
        return [(key, f"{name!r} is not in {directory.name}/")]
    resolved = path.resolve()
    if not resolved.is_relative_to(directory.resolve()):
        return [(key, f"{name!r} is a link leading out of {directory.name}/")]
    if not resolved.is_file():
        return [(key, f"{name!r} is not a regular file")]
    return []


def _never_equal(spec: Input, inputs: dict[str, Input]) -> list[str]:
    """``tls == "true"`` for a boolean ``tls``, ``mode == "strit"`` for a select without
    that value: a comparison with a value the input can never have is always false."""
    if spec.visible_if is None:
        return []
    problems = []
    for name, value, position in spec.visible_if.equality_literals():
        other = inputs.get(name)
        reason = _impossible(other, value) if other is not None else None
        if reason:
            problems.append(f"at {position}: {name} is never {rules.literal(value)} ({reason})")
    return problems


_KINDS: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int, float),
    "port": (int, float),
    "number": (int, float),
    **{kind: (str,) for kind in ("string", "text", "password", "email", "url", "select")},
}


def _impossible(spec: Input, value: Any) -> str | None:
    """Why ``spec``'s value can never equal ``value`` as the evaluator compares, if so."""
    if spec.type == "multiselect":
        return None  # a list: compared with "in" on strings, not checked here
    kinds = _KINDS[spec.type]
    is_bool = isinstance(value, bool)
    wrong_kind = is_bool != (kinds == (bool,)) or not isinstance(value, kinds)
    if wrong_kind and spec.type != "select":  # a select's kinds are its allowed values'
        return f"a {spec.type} input"
    allowed = spec.allowed_values
    if allowed is not None and not any(
        isinstance(item, bool) == is_bool and item == value for item in allowed
    ):
        return f"not one of its allowed_values: {rules.shown(allowed)}"
    return None


def _input(spec: Input, defined: dict[str, Input]) -> Found:
    found: Found = []
    if spec.name in defined:
        found.append(("name", f"{spec.name!r} is defined twice"))
    env = spec.environment_name
    if env in RESERVED_ENVIRONMENT or env.startswith(RESERVED_ENVIRONMENT_PREFIXES):
        found.append(("name", f"{env} is a reserved environment variable"))
    found += [("visible_if", message) for message in check_expression_names(spec, defined)]
    found += [("visible_if", message) for message in _never_equal(spec, defined)]
    found += _bounds(spec)
    if spec.pattern is not None:
        try:
            re.compile(spec.pattern)
        except re.error as exc:
            return [*found, ("validation.pattern", f"does not compile: {exc}")]
    found += _password(spec)
    found += _allowed_values(spec)
    if spec.default is not None and spec.type != "password":
        try:
            rules.check_value(spec, spec.default)
        except rules.RuleError as exc:
            found.append(("default", f"{exc.rule}: {exc.reason}"))
    return found


def _bounds(spec: Input) -> Found:
    found: Found = []
    for lower, upper in (("min_length", "max_length"), ("min_value", "max_value")):
        low_value, high_value = getattr(spec, lower), getattr(spec, upper)
        if low_value is not None and high_value is not None and low_value > high_value:
            found.append((f"validation.{lower}", f"is greater than {upper}"))
    if spec.type == "port":
        low, high = rules.PORTS
        for key in ("min_value", "max_value"):
            bound = getattr(spec, key)
            if bound is not None and not low <= bound <= high:
                found.append((f"validation.{key}", f"a port is {low}-{high}"))
    return found


def _password(spec: Input) -> Found:
    if spec.type != "password":
        return []
    found: Found = []
    if spec.default is not None:
        found.append(("default", "a password has no default"))
    if not spec.sensitive:
        found.append(("sensitive", "a password is always sensitive"))
    if spec.generate:
        try:
            rules.check_value(spec, rules.generate_password(spec))
        except rules.RuleError as exc:
            found.append(("generate", f"a generated password breaks {exc.rule}: {exc.reason}"))
    return found


def _allowed_values(spec: Input) -> Found:
    if spec.type == "multiselect":  # the script gets them comma-separated
        return [
            (f"validation.allowed_values[{index}]", "a multiselect value has no comma")
            for index, value in enumerate(spec.allowed_values or ())
            if "," in str(value)
        ]
    if spec.allowed_values is None or spec.type == "select":
        return []
    found: Found = []
    bare = Input(name=spec.name, type=spec.type, label=spec.label)  # the type alone
    for index, value in enumerate(spec.allowed_values):
        try:
            rules.check_value(bare, value)
        except rules.RuleError as exc:
            found.append((f"validation.allowed_values[{index}]", f"{exc.rule}: {exc.reason}"))
    return found


def describe(exc: ExpressionError) -> str:
    return f"does not parse at character {exc.position}: {exc.reason}"
