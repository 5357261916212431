"""One input value against its manifest's rules: the type, then each ``validation`` rule.

Used for what users submit (``inputs.check_inputs``) and for the manifest's own defaults
(the lint), so a default can never be something a user could not type. A value that breaks a
rule raises :class:`RuleError` with the rule's name (``type``, ``pattern``, ``max_length``,
...) and a reason; nothing a client sends raises anything else.

Form posts carry strings, JSON bodies typed values: a number, port or boolean may come as its
canonical string ("42", "true"); everything else must have its JSON type.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from portal.installers.manifest import Input

MAX_STRING = 10_000  # characters of any string input without its own max_length
MAX_TEXT = 100_000
MAX_CHOICES = 1000
INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,18}")
NUMBER_TEXT = re.compile(r"[+-]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})([eE][+-]?[0-9]{1,3})?")
BOOLEAN_TEXT = {"true": True, "false": False, "on": True, "off": False, "1": True, "0": False}
PORTS = (1, 65535)
_email = EmailValidator()
_url = URLValidator(schemes=["http", "https"])


class RuleError(ValueError):
    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


def check_value(spec: Input, value: Any) -> Any:
    """The value coerced to the input's type; raises RuleError naming the first broken rule."""
    coerce = _COERCE[spec.type]
    coerced = coerce(spec, value)
    _check_rules(spec, coerced)
    return coerced


def is_empty(value: Any) -> bool:
    """What counts as "not given": absent, null, an empty string or list."""
    return value is None or value == "" or value == []


# --- types --------------------------------------------------------------------------------


def _string(spec: Input, value: Any) -> str:
    if not isinstance(value, str):
        raise RuleError("type", f"must be a string, not {_kind(value)}")
    limit = MAX_TEXT if spec.type == "text" else MAX_STRING
    if len(value) > limit:
        raise RuleError("max_length", f"at most {limit} characters")
    if "\x00" in value:
        raise RuleError("type", "must not contain NUL characters")
    if not value.isascii() and _has_surrogates(value):  # JSON's "\ud800": no UTF-8 for it
        raise RuleError("type", "must be valid Unicode (no lone surrogates)")
    if spec.type != "text" and ("\n" in value or "\r" in value):
        raise RuleError("type", "must be one line")
    if spec.type == "email":
        _django_check(_email, value, "format", "must be an email address")
    if spec.type == "url":
        _django_check(_url, value, "format", "must be an http or https URL")
    return value


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _django_check(validator: Any, value: str, rule: str, reason: str) -> None:
    try:
        validator(value)
    except ValidationError:
        raise RuleError(rule, reason) from None


def _integer(spec: Input, value: Any) -> int:
    if isinstance(value, str) and INTEGER_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)  # 80.0 is an integer in JSON Schema too
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError("type", f"must be a whole number, not {_kind(value)}")
    if spec.type == "port" and not PORTS[0] <= value <= PORTS[1]:
        raise RuleError("type", f"a port is {PORTS[0]}-{PORTS[1]}")
    return value


def _number(spec: Input, value: Any) -> int | float:
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value.strip()):
        text = value.strip()
        value = int(text) if INTEGER_TEXT.fullmatch(text) else float(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError("type", f"must be a number, not {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleError("type", "must be a finite number")
    if spec.step is not None and not _on_step(value, spec.step, spec.min_value or 0):
        raise RuleError("step", f"must be {spec.min_value or 0} plus a multiple of {spec.step}")
    return value


def _on_step(value: int | float, step: int | float, base: int | float) -> bool:
    try:  # in decimal: 0.3 is a multiple of 0.1 here, unlike in binary floating point
        return (Decimal(str(value)) - Decimal(str(base))) % Decimal(str(step)) == 0
    except InvalidOperation:  # a quotient too large for the context: not on a step we allow
        return False


def _boolean(spec: Input, value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_TEXT:
        return BOOLEAN_TEXT[value.strip().lower()]
    if not isinstance(value, bool):
        raise RuleError("type", f"must be true or false, not {_kind(value)}")
    return value


def _select(spec: Input, value: Any) -> Any:
    if isinstance(value, list | dict) or value is None:
        raise RuleError("type", f"must be one value, not {_kind(value)}")
    return _choice(spec, value)


def _multiselect(spec: Input, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise RuleError("type", f"must be a list, not {_kind(value)}")
    if len(value) > MAX_CHOICES:
        raise RuleError("max_length", f"at most {MAX_CHOICES} values")
    chosen = [_choice(spec, item) for item in value]
    if len(set(map(repr, chosen))) != len(chosen):
        raise RuleError("unique", "each value at most once")
    return chosen


def _choice(spec: Input, value: Any) -> Any:
    """The allowed value the submitted one names: itself, or a form's string for a number."""
    for allowed in spec.allowed_values or ():
        same_kind = isinstance(allowed, bool) == isinstance(value, bool)
        if (same_kind and allowed == value) or (isinstance(value, str) and str(allowed) == value):
            return allowed
    if isinstance(value, list | dict) or value is None:
        raise RuleError("type", f"must be one of the allowed values, not {_kind(value)}")
    raise RuleError("allowed_values", f"must be one of {shown(spec.allowed_values)}")


_COERCE = {
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


# --- validation rules ---------------------------------------------------------------------


def _check_rules(spec: Input, value: Any) -> None:
    sized = isinstance(value, str | list)
    if spec.min_length is not None and sized and len(value) < spec.min_length:
        raise RuleError("min_length", f"at least {spec.min_length} {_unit(value)}")
    if spec.max_length is not None and sized and len(value) > spec.max_length:
        raise RuleError("max_length", f"at most {spec.max_length} {_unit(value)}")
    pattern = spec.pattern
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern, value):
        raise RuleError("pattern", f"must match {spec.pattern} (the whole value)")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.min_value is not None and numeric and value < spec.min_value:
        raise RuleError("min_value", f"at least {spec.min_value}")
    if spec.max_value is not None and numeric and value > spec.max_value:
        raise RuleError("max_value", f"at most {spec.max_value}")
    if spec.allowed_values is not None and spec.type not in ("select", "multiselect"):
        _choice(spec, value)  # raises allowed_values


def _unit(value: Any) -> str:
    return "characters" if isinstance(value, str) else "values"


def shown(values: tuple[Any, ...] | None, limit: int = 10) -> str:
    shown = ", ".join(literal(value) for value in (values or ())[:limit])
    return f"{shown}, …" if values and len(values) > limit else shown


def literal(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else repr(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a fraction",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# --- generated passwords ------------------------------------------------------------------

GENERATED_LENGTH = 24
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


def generate_password(spec: Input) -> str:
    """Letters and digits, at least one of each class (for patterns that ask for them),
    GENERATED_LENGTH long unless the input's min/max length say otherwise."""
    length = max(GENERATED_LENGTH, spec.min_length or 0)
    length = max(min(length, spec.max_length or length), len(_CLASSES))
    alphabet = "".join(_CLASSES)
    chars = [secrets.choice(chars) for chars in _CLASSES]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    for i in range(len(chars) - 1, 0, -1):  # Fisher-Yates with the secrets module's randomness
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)
