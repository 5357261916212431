"""Page-number pagination with clear errors.

``?page=`` that is not a page number (``abc``, ``0``, ``-1``) is a 400 naming ``page``; a
page past the last one is a 404 that says which page is the last. Both in the API's error
shape (DRF alone answers 404 "Invalid page." for both).
"""

from typing import Any

from django.core.paginator import InvalidPage, Paginator
from django.db.models import QuerySet
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

NOT_A_PAGE = "Not a page number: give a whole number from 1 (or 'last')."


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request: Request, paginator: Paginator) -> int | str:
        value = super().get_page_number(request, paginator)
        if value in self.last_page_strings:
            return value
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1 or str(value).strip() != str(value):
            raise ValidationError(
                {self.page_query_param: [ErrorDetail(NOT_A_PAGE, code="invalid_page")]}
            )
        return number

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        paginator = self.django_paginator_class(queryset, page_size)
        page_number = self.get_page_number(request, paginator)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage:
            last = paginator.num_pages
            raise NotFound(
                {
                    self.page_query_param: [
                        ErrorDetail(
                            f"There is no page {page_number}: the last page is {last}.",
                            code="not_found",
                        )
                    ]
                }
            ) from None
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return list(self.page)


class SourceListPagination(Pagination):
    """The source fleet API's lists: the body is a plain JSON array, as its clients read it;
    the page travels in headers (``Link`` with rel next/prev/first/last, RFC 8288, and
    ``X-Total-Count``). Pages are large (1,000 rows unless ``?page_size=`` asks for fewer),
    so a fleet of a few hundred VMs is one page, as it was in the source."""

    page_size = 1000
    max_page_size = 1000

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None  # set by paginate_queryset, which the view called
        paginator = self.page.paginator
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (
                ("next", self.get_next_link()),
                ("prev", self.get_previous_link()),
                ("first", self._page_link(1)),
                ("last", self._page_link(paginator.num_pages)),
            )
            if url
        ]
        headers = {"X-Total-Count": str(paginator.count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def _page_link(self, number: int) -> str:
        assert self.request is not None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, number)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema
