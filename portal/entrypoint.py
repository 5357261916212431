"""Shared start-up for manage.py, WSGI and Celery: a bad setting is one clear line, exit 2."""

import importlib
import os
import sys

from portal.config import ConfigError


def load_settings_or_exit() -> None:
    module = os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    try:
        importlib.import_module(module)
    except ConfigError as exc:
        sys.stderr.write(f"portal: configuration error: {exc}\n")
        raise SystemExit(2) from None
