"""The bench's settings: the portal's, plus the bench-only URLs (bench/urls.py).

Only the bench's gunicorn loads this (``DJANGO_SETTINGS_MODULE=bench.settings``, set by
bench/suite.py when a monitoring figure is wanted); the product's URL conf never sees the
floor view.
"""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
