"""Typed settings from the environment (the only source of configuration).

Every value can also come from a file named by ``<NAME>_FILE`` (Docker/Kubernetes secrets).
A bad value raises :class:`ConfigError` naming the variable; the entry points
(``manage.py``, ``portal.celery``, ``portal.wsgi``) print that one line and exit 2.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
_UNSET = object()
SUPPORTED_DATABASES = {"sqlite", "postgres", "postgresql", "pgsql"}


class ConfigError(ImproperlyConfigured):
    """A configuration variable is missing or malformed."""


class Env:
    """Reads typed values from a mapping (``os.environ`` by default)."""

    def __init__(self, environ_: Mapping[str, str] | None = None):
        self.environ = os.environ if environ_ is None else environ_

    def raw(self, name: str, default=_UNSET):
        file_name = self.environ.get(f"{name}_FILE")
        if file_name:
            try:
                return Path(file_name).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from exc
        if name in self.environ:
            return self.environ[name]
        if default is _UNSET:
            raise ConfigError(f"{name}: required but not set")
        return default

    def is_set(self, name: str) -> bool:
        return bool(self.environ.get(name) or self.environ.get(f"{name}_FILE"))

    def str(self, name: str, default=_UNSET) -> str:
        return self.raw(name, default)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.raw(name, None)
        if value is None:
            return default
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(f"{name}: expected true/false (1/0, yes/no, on/off), got {value!r}")

    def int(self, name: str, default: int, minimum: int | None = None) -> int:
        value = self.raw(name, None)
        if value is None or value.strip() == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}: must be >= {minimum}, got {number}")
        return number

    def float(self, name: str, default: float) -> float:
        value = self.raw(name, None)
        if value is None or value.strip() == "":
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name, None)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name, default).strip().lower()
        if value not in choices:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def database(self, name: str, default: str) -> dict:
        url = self.raw(name, default)
        scheme = url.partition("://")[0]
        if scheme not in SUPPORTED_DATABASES:
            raise ConfigError(
                f"{name}: unsupported database URL scheme {scheme!r} "
                f"(use one of {', '.join(sorted(SUPPORTED_DATABASES))})"
            )
        try:
            config = environ.Env.db_url_config(url)
        except Exception as exc:  # django-environ raises several kinds for a bad URL
            raise ConfigError(f"{name}: not a database URL ({exc})") from None
        if not config.get("NAME"):
            raise ConfigError(f"{name}: the URL names no database")
        return config

    def fernet_keys(self, name: str, fallback_file: Path | None) -> list[str]:
        """Comma-separated Fernet keys, newest first (MultiFernet rotation order)."""
        if self.is_set(name):
            keys = [k.strip() for k in self.raw(name).split(",") if k.strip()]
        elif fallback_file is not None:
            keys = [generated_secret(fallback_file, lambda: Fernet.generate_key().decode())]
        else:
            raise ConfigError(f"{name}: required when DEBUG is off (or set {name}_FILE)")
        for position, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigError(
                    f"{name}: key #{position} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        return keys


def generated_secret(path: Path, make=lambda: secrets.token_urlsafe(50)) -> str:
    """A development secret created once under var/ and reused, never hard-coded."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # Write aside, then link into place: atomic, and a concurrent starter (web, worker,
    # beat) either wins or reads the complete winner.
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    try:
        os.link(temporary, path)
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        temporary.unlink()
    return value
