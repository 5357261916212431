"""The API docs page (Swagger UI) under a Content-Security-Policy of its own.

drf-spectacular's split view serves the page's start-up script as a file (no inline script);
Swagger UI itself loads from wherever ``SWAGGER_UI_DIST`` says (a CDN by default, our own
static files with ``'SIDECAR'``), and the page keeps a small inline ``<style>``. Only this
view is widened for that; every other page keeps the strict site policy.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from csp.decorators import csp_update
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularSwaggerSplitView


def swagger_ui_origins() -> list[str]:
    """The origins Swagger UI's files and favicon come from (none when served locally)."""
    urls = (spectacular_settings.SWAGGER_UI_DIST, spectacular_settings.SWAGGER_UI_FAVICON_HREF)
    parts = [urlsplit(url) for url in urls]
    return sorted({f"{p.scheme}://{p.netloc}" for p in parts if p.scheme in ("http", "https")})


def docs_view(url_name: str) -> Callable[..., Any]:
    origins = swagger_ui_origins()
    policy = {"script-src": origins, "style-src": [*origins, "'unsafe-inline'"], "img-src": origins}
    return csp_update(policy)(SpectacularSwaggerSplitView.as_view(url_name=url_name))
