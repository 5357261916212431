"""The heartbeat's fast path: ``PUT /api/nodes/{id}/heartbeat`` (and the source fleet API's
``PUT /api/vms/{id}/heartbeat``, the same endpoint) answered in front of Django.

Every node's agent sends one heartbeat per interval, so this one request is most of the
web server's traffic on a large fleet. Django's handler and its eleven middleware cost
several times what the heartbeat itself does (monitoring benchmark, bench/README.md), and
none of them has anything to do for it: no session, no user, no CSRF (the token is a
header), no static file. ``HeartbeatFastPath`` wraps Django's WSGI application
(portal/wsgi.py) and answers the usual heartbeat itself with the view's own function
(``heartbeat.answer``), with what the middleware would have added:

- the Host check (``ALLOWED_HOSTS``, as ``HttpRequest.get_host``), the NUL-character
  refusal, the security headers (``SecurityMiddleware``, ``XFrameOptionsMiddleware``,
  ``CSPMiddleware``) and ``Content-Length``;
- the database connection per request as Django manages it: ``request_started`` and
  ``request_finished`` (``close_old_connections``: ``CONN_MAX_AGE``, health after errors)
  and ``CONN_HEALTH_CHECKS`` on the first query;
- an exception is logged as Django logs it (``django.request``) and answered with the API's
  500 body, never a traceback.

Anything unusual goes to Django unchanged and gets exactly Django's answer: another path or
method, a query string, no or a too large ``Content-Length``, a chunked body, a Host that
is not allowed (Django's 400 and its security log), an https redirect to make, a NUL in the
body, a form-encoded body, or a ``MIDDLEWARE`` setting other than the one mirrored here
(a new middleware turns the fast path off instead of being skipped).
"""

import json
import logging
import re
import select
from http import HTTPStatus
from io import BytesIO

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core import signals
from django.db import DEFAULT_DB_ALIAS, connections
from django.http.request import split_domain_port, validate_host

from portal.core.api.errors import error_body
from portal.core.middleware import NUL_MARKERS
from portal.monitoring.heartbeat import MAX_BODY_BYTES, answer

# As monitoring/api/urls.py, and the source fleet API's alias (fleet/api/vm_urls.py): a fleet
# VM's id is its node's.
PATH = re.compile(r"/api/(?:nodes|vms)/([0-9]{1,18})/heartbeat/?\Z")
# The middleware whose effect on a heartbeat's answer is reproduced here (see the module's
# docstring): with any other list the fast path stands aside.
MIRRORED_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.core.middleware.ApiErrorShapeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "portal.core.middleware.RejectNulCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
)
SERVER_ERROR = error_body(500, [(None, "Server error.", "error")])  # core.views.server_error
request_logger = logging.getLogger("django.request")


def _is_secure(environ) -> bool:
    """``HttpRequest.is_secure``: the proxy's header if configured and sent, else the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


def _host_allowed(environ) -> bool:
    """``HttpRequest.get_host`` would not raise DisallowedHost. False also when the request
    names no host at all (Django then builds one from the server name: its business)."""
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        host = environ["HTTP_X_FORWARDED_HOST"]
    else:
        host = environ.get("HTTP_HOST")
        if host is None:
            return False
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _content_length(environ) -> int | None:
    """The declared body size if the fast path takes the request (at most MAX_BODY_BYTES)."""
    value = environ.get("CONTENT_LENGTH", "")
    if not value.isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
        return None
    length = int(value)
    return length if length <= MAX_BODY_BYTES else None


def _takes(environ) -> int | None:
    """The body's length if this request is the fast path's to answer, else None."""
    if (
        environ.get("REQUEST_METHOD") != "PUT"
        or environ.get("QUERY_STRING")
        or environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        or tuple(settings.MIDDLEWARE) != MIRRORED_MIDDLEWARE
        or (settings.SECURE_SSL_REDIRECT and not _is_secure(environ))
        or not _host_allowed(environ)
    ):
        return None
    return _content_length(environ)


def middleware_headers(path: str, status: int, secure: bool) -> list[tuple[str, str]]:
    """The headers the mirrored middleware put on a JSON answer that has none of them.
    Built from the settings on first use (CSP's builder alone is a few % of a heartbeat's
    CPU) and again after a setting changes (tests)."""
    key = (*(path.startswith(_excluded(setting)) for _, setting, _ in CSP), status, secure)
    if key not in _HEADERS:
        _HEADERS[key] = _middleware_headers(path, status, secure)
    return _HEADERS[key]


_HEADERS: dict[tuple, list[tuple[str, str]]] = {}
signals.setting_changed.connect(lambda **kwargs: _HEADERS.clear(), weak=False)
CSP = (
    (HEADER, "CONTENT_SECURITY_POLICY", False),
    (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
)


def _excluded(setting: str) -> tuple[str, ...]:
    return tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())


def _middleware_headers(path: str, status: int, secure: bool) -> list[tuple[str, str]]:
    headers = []
    if settings.SECURE_HSTS_SECONDS and secure:
        sts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            sts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            sts += "; preload"
        headers.append(("Strict-Transport-Security", sts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        values = [v.strip() for v in policy.split(",")] if isinstance(policy, str) else policy
        headers.append(("Referrer-Policy", ",".join(values)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS.upper()))
    if not (settings.DEBUG and status in (404, 500)):  # CSPMiddleware leaves debug pages
        headers += _csp_headers(path)
    return headers


def _csp_headers(path: str) -> list[tuple[str, str]]:
    headers = []
    for name, setting, report_only in CSP:
        policy = build_policy(report_only=report_only)
        if policy and not path.startswith(_excluded(setting)):
            headers.append((name, policy))
    return headers


def check_health(db) -> None:
    """``CONN_HEALTH_CHECKS`` without a query per request, on PostgreSQL: a kept connection
    whose socket has something to read while idle was closed or is being closed by the
    server (restart, terminated, idle timeout: the server says so before it closes), and
    only then gets Django's check (``SELECT 1``) and is replaced if it fails. A connection
    dropped silently on the way would hang Django's check as it hangs the statement, so the
    query per request (a round trip) bought nothing more."""
    if db.vendor != "postgresql" or db.connection is None or db.health_check_done:
        return
    if db.health_check_enabled and _server_spoke(db.connection) and not db.is_usable():
        db.close()
    db.health_check_done = True


def _server_spoke(raw) -> bool:
    return raw.closed or bool(select.select([raw.fileno()], [], [], 0)[0])


class HeartbeatFastPath:
    """WSGI middleware: the usual heartbeat answered here, every other request by ``app``.
    ``route`` and ``answer`` are the heartbeat's; the benchmark's floor (bench/wsgi.py)
    passes its own, so both are served by the same code."""

    def __init__(self, app, route=PATH, answer=answer):
        self.app, self.route, self.answer = app, route, answer

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        match = self.route.match(path)
        length = _takes(environ) if match else None
        if length is None:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) != length or any(marker in body for marker in NUL_MARKERS):
            environ["wsgi.input"] = BytesIO(body)  # Django reads it again and says why
            return self.app(environ, start_response)
        status, content, headers = self._answer(environ, path, body, match.group(1))
        payload = json.dumps(content).encode()
        response_headers = [
            ("Content-Type", "application/json"),
            *headers.items(),
            *middleware_headers(path, status, _is_secure(environ)),
            ("Content-Length", str(len(payload))),
        ]
        start_response(f"{status} {HTTPStatus(status).phrase}", response_headers)
        return [payload]

    def _answer(self, environ, path, body, node_id):
        sender = type(self.app)
        signals.request_started.send(sender=sender, environ=environ)
        try:
            check_health(connections[DEFAULT_DB_ALIAS])  # `connection`: a lookup per use
            status, content, headers = self.answer(
                "PUT",
                environ.get("HTTP_AUTHORIZATION", ""),
                environ["CONTENT_LENGTH"],
                body,
                node_id,
            )
        except Exception:
            request_logger.exception(
                "Internal Server Error: %s", path, extra={"status_code": 500, "node": node_id}
            )
            return 500, SERVER_ERROR, {}
        finally:
            signals.request_finished.send(sender=sender)
        if status >= 400:  # as Django's handler logs a refused request
            request_logger.warning(
                "%s: %s", HTTPStatus(status).phrase, path, extra={"status_code": status}
            )
        return status, content, headers
