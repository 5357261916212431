"""Login lockout (django-axes): who is counted, and what a locked-out login is answered.

Failures are counted per username and client address (``AXES_LOCKOUT_PARAMETERS``); after
``LOGIN_FAILURE_LIMIT`` of them that pair is refused for ``LOGIN_COOLOFF_MINUTES``: the API
answers 429 in its error shape, the login pages (the customers' and the admin's) a page
saying so, also 429. Admins unlock in the admin (Users: "Unlock login", or Axes > Access
attempts: delete) or with ``manage.py axes_reset_username <name>`` / ``axes_reset``.
"""

import ipaddress

from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from rest_framework.request import Request

from portal.core.api.errors import error_body

LOCKED_TEMPLATE = "registration/locked.html"
# What axes can store of a username (AccessAttempt.username): longer ones are no account.
USERNAME_MAX_LENGTH = 255


def lockout_message() -> str:
    minutes = settings.LOGIN_COOLOFF_MINUTES
    if not minutes:
        return "Too many failed logins; ask an admin to unlock your account."
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed logins; try again in {minutes} {unit}."


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the API's error shape under /api/, a page everywhere else."""
    message = lockout_message()
    headers = _retry_after()
    if request.path.startswith("/api/"):
        body = error_body(429, [(None, message, "locked_out")], "locked_out")
        return JsonResponse(body, status=429, headers=headers)
    response = render(request, LOCKED_TEMPLATE, {"message": message}, status=429)
    for name, value in headers.items():
        response[name] = value
    return response


def _retry_after() -> dict:
    minutes = settings.LOGIN_COOLOFF_MINUTES
    return {"Retry-After": str(minutes * 60)} if minutes else {}


@receiver(user_locked_out)
def mark_django_request(sender, request=None, **kwargs):
    """DRF's views hand axes their wrapper of Django's request, and axes marks the wrapper;
    AxesMiddleware looks at Django's own request, so mark that one too (else the token view
    answers a plain 400 and the lockout goes unsaid)."""
    if isinstance(request, Request):
        request._request.axes_locked_out = True
        request._request.axes_credentials = getattr(request, "axes_credentials", None)


def client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE. Behind the TLS proxy (BEHIND_TLS_PROXY) the client is the
    address the proxies appended to X-Forwarded-For, counted from the right: what a client
    sends itself stays on the left, so it cannot pick an address to dodge its lockout.
    Otherwise X-Forwarded-For is the client's own words and ignored."""
    remote = request.META.get("REMOTE_ADDR")
    if not settings.BEHIND_TLS_PROXY:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    count = settings.TRUSTED_PROXY_COUNT
    if len(forwarded) < count or not _is_ip(forwarded[-count]):
        return remote  # not what the proxies write: the proxy's own address is safer
    return forwarded[-count]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def client_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username tried, cut to what axes can store (the token
    view takes any length; a longer one would fail the insert instead of counting)."""
    source = credentials if credentials is not None else getattr(request, "data", request.POST)
    field = settings.AXES_USERNAME_FORM_FIELD  # type: ignore[misc]  # django-axes' default
    username = source.get(field) if hasattr(source, "get") else None
    return None if username is None else str(username)[:USERNAME_MAX_LENGTH]


def unlock(usernames: list[str]) -> int:
    """Forget the failed logins of these users, from every address; how many records went."""
    return sum(reset(username=username) for username in usernames)
