"""One error body for the whole API.

    {"status": 400, "code": "invalid", "message": "email: A customer with this email ...",
     "errors": [{"field": "email", "message": "A customer with this email ...", "code": "unique"}]}

``field`` is null for errors that concern the request as a whole.
"""

import logging
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import Model, ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.core.errors import PortalError

logger = logging.getLogger(__name__)
NON_FIELD_KEYS = {"non_field_errors", "__all__", "detail"}
# Codes for errors made outside DRF, named like DRF's own.
STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _flatten(detail: Any, field: str | None = None) -> Iterator[tuple[str | None, str, str]]:
    """Yield (field, message, code) from DRF's nested error details."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = field if key in NON_FIELD_KEYS else (f"{field}.{key}" if field else key)
            yield from _flatten(value, child)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            nested = isinstance(item, dict | list) and field
            yield from _flatten(item, f"{field}[{index}]" if nested else field)
    else:
        yield field, str(detail), getattr(detail, "code", None) or "invalid"


def error_body(
    status_code: int, errors: list[tuple[str | None, str, str]], code: str | None = None
) -> dict[str, Any]:
    items = [{"field": f, "message": m, "code": c} for f, m, c in errors]
    first = items[0] if items else {"field": None, "message": "Error", "code": "error"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return {
        "status": status_code,
        "code": code or first["code"],
        "message": message,
        "errors": items,
    }


def is_api_request(request: HttpRequest) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def json_error(
    status_code: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    """The error shape for responses made outside DRF (Django's handlers, middleware)."""
    body = error_body(status_code, [(None, message, code)], code)
    return JsonResponse(body, status=status_code, headers=headers)


def status_code_name(status_code: int) -> str:
    return STATUS_CODES.get(status_code, "error" if status_code >= 500 else "invalid")


def status_message(status_code: int) -> str:
    try:
        return f"{HTTPStatus(status_code).phrase}."
    except ValueError:
        return "Error."


def request_error(exc: Exception | None) -> tuple[int, str, str]:
    """Status, message and code for a request Django itself refused (SuspiciousOperation)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, f"The request body is too large (at most {limit} bytes).", "request_too_large"
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return 400, "The request has too many fields or files.", "too_many_fields"
    return 400, "Bad request.", "bad_request"


SHOWN_NAMES = 3  # per kind of holder, in a "still used by" message


def _deleted_object(context: Mapping[str, Any] | None) -> str:
    """``node web-1`` for the object the view was deleting, else ``this object``."""
    view: Any = (context or {}).get("view")
    kwargs = (context or {}).get("kwargs") or {}
    try:
        model = view.get_queryset().model
        key = kwargs[view.lookup_url_kwarg or view.lookup_field]
        found = model._default_manager.filter(**{view.lookup_field: key}).first()
    except Exception:  # no view, no key, a view without a queryset: say less
        return "this object"
    if found is None:
        return f"this {model._meta.verbose_name}"
    return f"{model._meta.verbose_name} {found}"


def protected_message(exc: Exception, context: Mapping[str, Any] | None = None) -> str:
    """What still holds an object that cannot be deleted, by kind, with a few names:
    "node web-1 is still used by 3 workspaces (a, b, c) and 1 lab (intro): delete or move
    them first." Every DELETE refused by a PROTECT or RESTRICT foreign key says this."""
    held = getattr(exc, "protected_objects", ()) or getattr(exc, "restricted_objects", ())
    kinds: dict[type[Model], list[Model]] = {}
    for obj in held:
        kinds.setdefault(type(obj), []).append(obj)
    parts = []
    for model, objects in sorted(kinds.items(), key=lambda kind: kind[0]._meta.label):
        objects.sort(key=lambda obj: obj.pk)
        noun = model._meta.verbose_name if len(objects) == 1 else model._meta.verbose_name_plural
        names = ", ".join(str(obj) for obj in objects[:SHOWN_NAMES])
        more = ", …" if len(objects) > SHOWN_NAMES else ""
        parts.append(f"{len(objects)} {noun} ({names}{more})")
    if not parts:
        return "This object is still in use: delete or move what refers to it first."
    holders = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    deleted = _deleted_object(context)
    deleted = deleted[0].upper() + deleted[1:]
    return f"{deleted} is still used by {holders}: delete or move them first."


def _as_drf_exception(
    exc: Exception, context: Mapping[str, Any] | None = None
) -> tuple[int, list[tuple[str | None, str, str]], str] | None:
    if isinstance(exc, PortalError):
        return exc.status_code, [(exc.field, exc.message, exc.code)], exc.code
    if isinstance(exc, SuspiciousOperation):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        status_code, message, code = request_error(exc)
        return status_code, [(None, message, code)], code
    if isinstance(exc, DjangoValidationError):
        detail: dict[Any, list[str]] = (
            {None: exc.messages} if not hasattr(exc, "error_dict") else exc.message_dict
        )
        errors = [
            (None if key in NON_FIELD_KEYS else key, message, "invalid")
            for key, messages in detail.items()
            for message in messages
        ]
        return 400, errors, "invalid"
    if isinstance(exc, DataError):
        # A value the database cannot store (out of range, bad encoding): the caller's input.
        logger.warning("data error answered as 400: %s", exc)
        return 400, [(None, "A value is out of range or cannot be stored.", "invalid")], "invalid"
    if isinstance(exc, ProtectedError | RestrictedError):
        return 409, [(None, protected_message(exc, context), "protected")], "protected"
    if isinstance(exc, IntegrityError):
        # A race the validators could not see (two concurrent creates): a conflict,
        # not a server error.
        logger.warning("integrity error answered as 409: %s", exc)
        return 409, [(None, "This conflicts with an existing record.", "conflict")], "conflict"
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    converted = _as_drf_exception(exc, context)
    if converted:
        status_code, errors, code = converted
        return Response(error_body(status_code, errors, code), status=status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    errors = list(_flatten(response.data))
    default_code = exc.default_code if isinstance(exc, exceptions.APIException) else None
    if isinstance(exc, exceptions.ValidationError):
        default_code = "invalid"
    response.data = error_body(response.status_code, errors, default_code)
    return response
