"""One error body for the whole API.

    {"status": 400, "code": "invalid", "message": "email: A customer with this email ...",
     "errors": [{"field": "email", "message": "A customer with this email ...", "code": "unique"}]}

``field`` is null for errors that concern the request as a whole.
"""

import logging
from http import HTTPStatus

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
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.core.errors import PortalError

logger = logging.getLogger(__name__)
NON_FIELD_KEYS = {"non_field_errors", "__all__", "detail"}
# Codes for errors made outside DRF, named like DRF's own.
STATUS_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied",
                404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
                413: "request_too_large", 415: "unsupported_media_type", 429: "throttled"}


def _flatten(detail, field=None):
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


def error_body(status_code: int, errors: list[tuple], code: str | None = None) -> dict:
    items = [{"field": f, "message": m, "code": c} for f, m, c in errors]
    first = items[0] if items else {"field": None, "message": "Error", "code": "error"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return {
        "status": status_code,
        "code": code or first["code"],
        "message": message,
        "errors": items,
    }


def is_api_request(request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def json_error(status_code: int, message: str, code: str, headers=None) -> JsonResponse:
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


def request_error(exc) -> tuple[int, str, str]:
    """Status, message and code for a request Django itself refused (SuspiciousOperation)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, f"The request body is too large (at most {limit} bytes).", "request_too_large"
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return 400, "The request has too many fields or files.", "too_many_fields"
    return 400, "Bad request.", "bad_request"


def _as_drf_exception(exc):
    if isinstance(exc, PortalError):
        return exc.status_code, [(exc.field, exc.message, exc.code)], exc.code
    if isinstance(exc, SuspiciousOperation):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        status_code, message, code = request_error(exc)
        return status_code, [(None, message, code)], code
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
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
    if isinstance(exc, IntegrityError):
        # A race the validators could not see (two concurrent creates): a conflict,
        # not a server error.
        logger.warning("integrity error answered as 409: %s", exc)
        return 409, [(None, "This conflicts with an existing record.", "conflict")], "conflict"
    return None


def exception_handler(exc, context):
    converted = _as_drf_exception(exc)
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
