"""Typed settings from the environment (the only source of configuration), via django-environ.

:class:`Env` is django-environ's ``Env``: its methods (``str``, ``bool``, ``int``, ``float``,
``list``, ``json``, ``db_url``, ``email_url``, ...) and its casts (``Env.parse_value``,
``db_url_config``, ``email_url_config``) do the reading. On top of them, the portal's rules:

- values come through django-environ's ``FileAwareMapping``: ``<NAME>_FILE`` names a file
  holding the value (Docker/Kubernetes secrets) and wins over ``<NAME>``; the file's content
  is stripped of surrounding whitespace (a secret file usually ends with a newline);
- a bad value raises :class:`ConfigError` naming the variable and what was expected; the entry
  points (``manage.py``, ``portal.celery``, ``portal.wsgi``, the inventory script) print that
  one line and exit 2. django-environ alone would read ``DEBUG=maybe`` as false, ``1e3`` as
  the float 13, and a bad integer as a bare ``ValueError`` traceback;
- no ``$NAME`` references (django-environ's "proxied values"): a secret may start with ``$``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from environ.fileaware_mapping import FileAwareMapping

# django-environ reads any other word as false: only these words are accepted.
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
# A plain decimal number, which django-environ's float cast reads correctly (it drops every
# character but digits, ',', '.' and '-', so '1e3' would become 13).
DECIMAL = re.compile(r"\s*-?(\d+\.?\d*|\.\d+)\s*")
SUPPORTED_DATABASES = {"sqlite", "postgres", "postgresql", "pgsql"}
NOTSET = environ.Env.NOTSET
# Type names that are also method names of Env (as django-environ itself does).
_int: TypeAlias = int
_list: TypeAlias = list


class ConfigError(ImproperlyConfigured):
    """A configuration variable is missing or malformed."""


def _expected(cast: Any) -> str:
    if cast is int:
        return "an integer"
    if cast is float:
        return "a number"
    if cast is json.loads:
        return "JSON"
    if cast is list or isinstance(cast, list):
        return "a comma-separated list"
    return f"a value {getattr(cast, '__name__', cast)} accepts"


class Env(environ.Env):
    """django-environ's reader over ``os.environ`` (or the mapping given), with ``*_FILE``."""

    def __init__(self, environ_: Mapping[str, str] | None = None):
        super().__init__()
        self.ENVIRON = FileAwareMapping(os.environ if environ_ is None else environ_, cache=False)

    def is_set(self, var: str) -> bool:
        return bool(self.ENVIRON.env.get(var) or self.ENVIRON.env.get(f"{var}_FILE"))

    def get_value(
        self, var: str, cast: Any = None, default: Any = NOTSET, parse_default: bool = False
    ) -> Any:
        """django-environ's lookup, with errors that name the variable and no proxies."""
        try:
            value = self.ENVIRON[var]
        except KeyError:
            if default is NOTSET:
                raise ConfigError(f"{var}: required but not set") from None
            if not parse_default:
                return default
            value = default
        except OSError as exc:
            file_name = self.ENVIRON.env[f"{var}_FILE"]
            raise ConfigError(f"{var}_FILE: cannot read {file_name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            file_name = self.ENVIRON.env[f"{var}_FILE"]
            raise ConfigError(f"{var}_FILE: {file_name} is not UTF-8 text") from None
        else:
            if self.ENVIRON.env.get(f"{var}_FILE"):
                value = value.strip()
        if cast is None and default is not None and default is not NOTSET:
            cast = type(default)  # django-environ's smart cast
        empty = isinstance(value, str) and not value.strip()
        if cast in (int, float) and empty and default is not NOTSET:
            return default  # set but empty: the default, as if unset
        self._check_word(var, value, cast)
        try:
            return self.parse_value(value, cast)
        except (ValueError, TypeError):
            raise ConfigError(f"{var}: expected {_expected(cast)}, got {value!r}") from None

    @staticmethod
    def _check_word(var: str, value: Any, cast: Any) -> None:
        if not isinstance(value, str):
            return
        if cast is bool and value.strip().lower() not in TRUE_WORDS | FALSE_WORDS:
            raise ConfigError(f"{var}: expected true/false (1/0, yes/no, on/off), got {value!r}")
        if cast is float and not DECIMAL.fullmatch(value):
            raise ConfigError(f"{var}: expected a number, got {value!r}")

    def int(self, var: str, default: Any = NOTSET, minimum: _int | None = None) -> _int:
        number = super().int(var, default)
        if minimum is not None and number < minimum:
            raise ConfigError(f"{var}: must be >= {minimum}, got {number}")
        return number

    def list(self, var: str, cast: Callable | None = None, default: Any = NOTSET) -> _list:
        """Comma-separated; items stripped, empty ones dropped (``a, b,`` is ``[a, b]``)."""
        if cast is not None and not callable(cast):  # django-environ's order: cast, default
            raise TypeError(f"{var}: pass the default by name: env.list(var, default=...)")
        items = super().list(var, cast=str.strip, default=default)
        items = [item for item in items if item != ""]
        return [cast(item) for item in items] if cast else items

    def choice(self, var: str, choices: tuple[str, ...], default: str) -> str:
        value = self.str(var, default).strip().lower()
        if value not in choices:
            raise ConfigError(f"{var}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def db_url(
        self,
        var: str = environ.Env.DEFAULT_DATABASE_ENV,
        default: Any = NOTSET,
        engine: str | None = None,
    ) -> dict:
        url = self.str(var, default)
        scheme = url.partition("://")[0]
        if scheme not in SUPPORTED_DATABASES:
            raise ConfigError(
                f"{var}: unsupported database URL scheme {scheme!r} "
                f"(use one of {', '.join(sorted(SUPPORTED_DATABASES))})"
            )
        try:
            config = self.db_url_config(url, engine=engine)
        except Exception as exc:  # django-environ raises several kinds for a bad URL
            raise ConfigError(f"{var}: not a database URL ({exc})") from None
        if not config.get("NAME"):
            raise ConfigError(f"{var}: the URL names no database")
        return config

    db = db_url

    def email_url(
        self,
        var: str = environ.Env.DEFAULT_EMAIL_ENV,
        default: Any = NOTSET,
        backend: str | None = None,
    ) -> dict:
        url = self.str(var, default)
        try:
            return self.email_url_config(url, backend=backend)
        except Exception as exc:  # an unknown scheme: ImproperlyConfigured; a bad port: ValueError
            raise ConfigError(f"{var}: not an email URL ({exc!r})") from None

    email = email_url

    def fernet_keys(self, var: str, fallback_file: Path | None) -> _list[str]:
        """Comma-separated Fernet keys, newest first (MultiFernet rotation order)."""
        if self.is_set(var):
            keys = self.list(var)
        elif fallback_file is not None:
            keys = [generated_secret(fallback_file, lambda: Fernet.generate_key().decode())]
        else:
            raise ConfigError(f"{var}: required when DEBUG is off (or set {var}_FILE)")
        for position, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigError(
                    f"{var}: key #{position} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        return keys


# var/ holds the generated secrets and the embedded default's SQLite file (API tokens,
# password hashes): made for the portal's user alone. One made before is left as it is.
PRIVATE_DIR_MODE = 0o700


def _urlsafe_secret() -> str:
    return secrets.token_urlsafe(50)


def generated_secret(path: Path, make: Callable[[], str] = _urlsafe_secret) -> str:
    """A development secret created once under var/ and reused, never hard-coded."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
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
