"""Request guards shared by every API endpoint."""

from collections.abc import Callable
from typing import cast

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from rest_framework.response import Response

from portal.core.api.errors import (
    error_body,
    is_api_request,
    json_error,
    status_code_name,
    status_message,
)

NUL_MARKERS = (b"\x00", b"\\u0000")  # raw, or escaped in JSON


def _has_nul(request: HttpRequest) -> str | None:
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name
    body = request.body if request.method in ("POST", "PUT", "PATCH") else b""
    markers: tuple[bytes, ...] = NUL_MARKERS
    if request.content_type == "application/x-www-form-urlencoded":
        markers = (*markers, b"%00")
    if any(marker in body for marker in markers):
        return None
    return ""


class RejectNulCharactersMiddleware:
    """NUL characters cannot be stored in PostgreSQL text and are never meaningful in this
    API: refuse them up front with a 400 instead of failing deep in a query."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path.startswith("/api/"):
            field = _has_nul(request)
            if field != "":
                message = "NUL characters (\\u0000) are not allowed."
                body = error_body(400, [(field, message, "null_characters_not_allowed")])
                return JsonResponse(body, status=400)
        return self.get_response(request)


KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _is_shaped(response: HttpResponseBase) -> bool:
    # DRF responses carry the exception handler's shape (rendered as the client asked).
    content_type = response.get("Content-Type", "")
    return isinstance(response, Response) or content_type.startswith("application/json")


def _message(response: HttpResponseBase) -> str:
    """A short plain-text body says what happened (e.g. a lockout); a page does not."""
    if not response.streaming and response.get("Content-Type", "").startswith("text/plain"):
        text = cast(HttpResponse, response).content.decode(errors="replace").strip()
        if text and len(text) <= 300 and "\n" not in text:
            return text
    return status_message(response.status_code)


class ApiErrorShapeMiddleware:
    """Under /api/ every error has the one JSON shape, whoever answered: Django's CSRF and
    405 responses, another middleware, DEBUG's technical pages. Clients parse one shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api_request(request) or _is_shaped(response):
            return response
        headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
        status_code = response.status_code
        shaped = json_error(
            status_code, _message(response), status_code_name(status_code), headers=headers
        )
        shaped.cookies = response.cookies
        return shaped
