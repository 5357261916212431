"""Request parsing that no body a client sends can turn into a server error.

DRF's JSONParser lets Python's decoder recurse once per nesting level: ``[[[[…]]]]`` 5,000
deep raised RecursionError (a 500), and a value a few hundred deep parsed but then broke
``json.dumps`` in the JSON field, the job signature or the YAML for Ansible. Every body this
API takes is a JSON object a few levels deep, so bound the depth well below any of those.
"""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

MAX_DEPTH = 64  # a request body's nesting (``{}`` is 1); far below Python's recursion limit


class NestingTooDeep(ParseError):
    default_detail = f"The JSON body is nested too deeply (more than {MAX_DEPTH} levels)."
    default_code = "nesting_too_deep"


class NotAnObject(ParseError):
    default_detail = "The request body must be a JSON object."
    default_code = "not_an_object"


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether lists/dicts in ``value`` nest deeper than ``limit``; iterative, so walking a
    hostile value cannot hit the recursion limit itself."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def check_content_length(parser_context: Mapping[str, Any] | None) -> None:
    """Refuse an oversized body before reading it (Django checks ``request.body`` the same
    way, but a parser reading the stream directly would not)."""
    request = (parser_context or {}).get("request")
    meta = getattr(request, "META", {})
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        raise RequestTooLarge(f"The request body is too large (at most {limit} bytes).")


class JSONParser(parsers.JSONParser):
    """DRF's parser with a size and a nesting bound, and an object at the top (every
    request body of this API is one; anything else would reach views as a list or a str)."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        check_content_length(parser_context)
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise NestingTooDeep() from None
        if nesting_exceeds(data, MAX_DEPTH):
            raise NestingTooDeep()
        if not isinstance(data, dict):
            raise NotAnObject()
        return data
