"""Checks of a driver's options (the node's ``power_options``): ValueError naming the key."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from portal.clusters.power import PowerError, PowerTarget


def for_target(check: Callable[[Any], dict[str, Any]], target: PowerTarget) -> dict[str, Any]:
    """The target's options checked by ``check``; bad ones are the action's PowerError."""
    try:
        return check(target.options)
    except ValueError as exc:
        raise PowerError(f"{target.node}: {exc}") from None


def as_mapping(options: Any) -> Mapping[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError("power options must be a JSON object")
    return options


def refuse_unknown(options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"unknown power option {unknown[0]!r} (known: {known})")


def integer(options: Mapping[str, Any], key: str, default: int | None, low: int, high: int):
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"power option {key!r} must be an integer from {low} to {high}")
    return value


def boolean(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"power option {key!r} must be true or false")
    return value


def text(options: Mapping[str, Any], key: str, default: str = "") -> str:
    value = options.get(key, default)
    if not isinstance(value, str) or "\0" in value or "\n" in value:
        raise ValueError(f"power option {key!r} must be a single-line string")
    return value


def choice(options: Mapping[str, Any], key: str, default: str, allowed: Iterable[str]) -> str:
    value = options.get(key, default)
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"power option {key!r} must be one of: {', '.join(allowed)}")
    return str(value)


def argv(options: Mapping[str, Any], key: str, required: bool) -> list[str] | None:
    value = options.get(key)
    if value is None and not required:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(part, str) and part and "\0" not in part for part in value)
    ):
        raise ValueError(f"power option {key!r} must be a non-empty list of strings (an argv)")
    return list(value)
