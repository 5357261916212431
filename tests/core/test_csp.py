"""Content-Security-Policy: a strict policy on every page, and the pages work under it
(no inline script or style); the API docs alone allow Swagger UI's origin."""

import re

import pytest

pytestmark = pytest.mark.django_db

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
OWN_PAGES = ["/accounts/login/", "/workspaces/", "/labs/"]
ADMIN_PAGES = ["/admin/", "/admin/nodes/node/", "/admin/nodes/node/add/", "/admin/jobs/job/"]
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I),  # code
    re.compile(r"<style", re.I),
    re.compile(r"\sstyle=", re.I),
    re.compile(r"\son[a-z]+=", re.I),  # onclick=… handlers
]


def policy(response) -> dict:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def _get(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    return response


@pytest.mark.parametrize("path", OWN_PAGES + ADMIN_PAGES + ["/api/customers/"])
def test_every_page_has_the_strict_policy(admin_client, path):
    directives = policy(_get(admin_client, path))
    for name, value in STRICT.items():
        assert directives[name] == value, (path, name)
    assert "unsafe" not in admin_client.get(path)["Content-Security-Policy"]


@pytest.mark.parametrize("path", OWN_PAGES)
def test_own_pages_have_no_inline_code_or_style(admin_client, client, path):
    for html in (
        _get(admin_client, path).content.decode(),
        client.get("/accounts/login/").content.decode(),
    ):
        for pattern in INLINE:
            assert not pattern.search(html), (path, pattern.pattern)


def test_the_styles_and_scripts_moved_out_are_served(admin_client):
    from django.contrib.staticfiles import finders

    html = _get(admin_client, "/labs/").content.decode()
    assert "portal/base.css" in html and "labs/my_labs.js" in html
    assert finders.find("portal/base.css") and finders.find("labs/my_labs.js")


def test_api_docs_are_served_from_our_own_files_and_nothing_inline(admin_client):
    """Swagger UI comes from drf-spectacular-sidecar's static files: the page works on an
    air-gapped site and its policy names no other origin."""
    from django.contrib.staticfiles import finders

    response = _get(admin_client, "/api/docs/")
    directives = policy(response)
    assert "http" not in directives["script-src"]  # no CDN
    assert "unsafe" not in directives["script-src"]  # the start-up script is a file
    assert directives["frame-ancestors"] == "'none'"
    html = response.content.decode()
    assert not INLINE[0].search(html)
    assert "cdn.jsdelivr.net" not in html
    bundle = "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert f"/static/{bundle}" in html and finders.find(bundle)
    script = admin_client.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


def test_docs_policy_follows_where_swagger_ui_is_served():
    from drf_spectacular.settings import patched_settings

    from portal.core.api.docs import swagger_ui_origins

    assert swagger_ui_origins() == []
    cdn = {
        "SWAGGER_UI_DIST": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5",
        "SWAGGER_UI_FAVICON_HREF": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/x.png",
    }
    with patched_settings(cdn):
        assert swagger_ui_origins() == ["https://cdn.jsdelivr.net"]
