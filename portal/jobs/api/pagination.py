"""The jobs list's pagination: a cursor, so a page deep in the history costs what the first
one does, and a count that never scans the history.

- **By cursor** (the default, and every ``next``/``previous`` link): newest first
  (``-created_at, -id``, served by the index ``jobs_job_created_id``), or oldest first with
  ``?ordering=created_at``. Each page is an index range from the cursor's position.
- **By page number** (``?page=N``, kept for existing clients): an ``OFFSET``, so only the
  first ``MAX_PAGE_ROWS`` jobs are reachable this way; a deeper page is a 400 naming
  ``page`` that says to follow ``next``. Other orderings (``status``, ``finished_at``) page
  by number too. A page past the end is a 404, as before.
- ``count``: exact up to ``EXACT_COUNT_UP_TO`` jobs; above, PostgreSQL's planner estimate
  for the same query (no scan; other databases count exactly).

Response shape unchanged: ``{"count", "next", "previous", "results"}``.
"""

import json
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

NOT_A_PAGE = "Not a page number: give a whole number from 1."
MAX_PAGE_ROWS = 10_000
EXACT_COUNT_UP_TO = 1_000
CURSOR_ORDERINGS = {
    None: ("-created_at", "-id"),
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
}


class JobPagination(CursorPagination):
    ordering = CURSOR_ORDERINGS[None]
    page_size_query_param = "page_size"
    max_page_size = 500
    page_query_param = "page"
    number: int | None = None  # the page asked for by number; None: by cursor
    more = False
    count = 0

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self.request = request
        size = self.get_page_size(request)
        if not size:
            return None
        self.page_size = size
        self.count = estimated_count(queryset)
        ordering = request.query_params.get("ordering")
        if self.page_query_param in request.query_params or ordering not in CURSOR_ORDERINGS:
            return self._by_number(queryset, request, size)
        self.number = None
        self.ordering = CURSOR_ORDERINGS[ordering]
        return super().paginate_queryset(queryset, request, view)

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: APIView) -> Any:
        # Chosen in paginate_queryset: only created_at orders a cursor (with id to break ties).
        return self.ordering

    def _by_number(self, queryset: QuerySet[Any], request: Request, size: int) -> list[Any]:
        number = page_number(request.query_params.get(self.page_query_param, "1"))
        self.number = number
        offset = (number - 1) * size
        if offset + size > MAX_PAGE_ROWS:
            deepest = MAX_PAGE_ROWS // size
            raise ValidationError(
                {
                    self.page_query_param: [
                        ErrorDetail(
                            f"Pages by number reach the first {MAX_PAGE_ROWS} jobs (page "
                            f"{deepest} with page_size {size}); follow `next` "
                            "(a cursor) to go further, or filter.",
                            code="page_too_deep",
                        )
                    ]
                }
            )
        rows = list(queryset[offset : offset + size + 1])
        if not rows and number > 1:
            raise NotFound(
                {
                    self.page_query_param: [
                        ErrorDetail(f"There is no page {number}.", code="not_found")
                    ]
                }
            )
        self.more = len(rows) > size
        return rows[:size]

    def get_next_link(self) -> str | None:
        if self.number is None:
            return super().get_next_link()
        if not self.more:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, self.number + 1)

    def get_previous_link(self) -> str | None:
        if self.number is None:
            return super().get_previous_link()
        if self.number == 1:
            return None
        url = self.request.build_absolute_uri()
        if self.number == 2:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.number - 1)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        answer = super().get_paginated_response_schema(schema)
        answer["properties"] = {
            "count": {
                "type": "integer",
                "example": 123,
                "description": f"Exact up to {EXACT_COUNT_UP_TO}; above, an estimate.",
            },
            **answer["properties"],
        }
        answer["required"] = ["count", *answer.get("required", [])]
        return answer

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": f"Page number (the first {MAX_PAGE_ROWS} jobs only; "
                "past that, follow `next`).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]


def page_number(value: str) -> int:
    """A whole number from 1, else a 400 naming ``page``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(value).strip() != str(value):
        raise ValidationError({"page": [ErrorDetail(NOT_A_PAGE, code="invalid_page")]})
    return number


def estimated_count(queryset: QuerySet[Any]) -> int:
    """Exact up to EXACT_COUNT_UP_TO (a count over a LIMIT: it reads at most that many
    index entries); above, the planner's row estimate on PostgreSQL."""
    rows = queryset.order_by().values("pk")
    exact = rows[: EXACT_COUNT_UP_TO + 1].count()
    if exact <= EXACT_COUNT_UP_TO:
        return exact
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return rows.count()
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return max(int(plan[0]["Plan"]["Plan Rows"]), EXACT_COUNT_UP_TO + 1)
