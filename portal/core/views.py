"""Site-wide views: the home redirect, health, and error pages that answer JSON under /api/."""

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect
from django.views import defaults
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from portal.core import health
from portal.core.api.errors import error_body, is_api_request, json_error, request_error

_wants_json = is_api_request


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django refused the request before any view (a body over the size limit: 413)."""
    if _wants_json(request):
        return json_error(*request_error(exception))
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]  # None works


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        body = error_body(404, [(None, "Not found.", "not_found")])
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body(500, [(None, "Server error.", "error")]), status=500)
    return defaults.server_error(request)


# `GET /` to a client that asks for JSON: the service info, as the source fleet API gave it.
SERVICE_ENDPOINTS = {
    "health": "/api/health",
    "vms": "/api/vms",
    "customers": "/api/customers",
    "fleet_metrics": "/api/metrics/fleet",
    "alerts": "/api/alerts",
    "updates": "/api/updates",
    "schema": "/api/schema/",
    "docs": "/api/docs/",
}


def service_info() -> dict:
    from django.conf import settings

    return {
        "name": settings.SPECTACULAR_SETTINGS["TITLE"],
        "version": settings.SPECTACULAR_SETTINGS["VERSION"],
        "endpoints": SERVICE_ENDPOINTS,
    }


@require_safe
@vary_on_headers("Accept")
def home_view(request: HttpRequest) -> HttpResponseBase:
    """`/`: the login page for visitors; the workspaces page (where the menu leads to the
    labs, and staff to the admin) for signed-in users; the admin for staff of no customer.
    A client whose Accept prefers JSON to HTML gets the service info instead."""
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return JsonResponse(service_info())
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.user.is_staff and not request.user.memberships.exists():
        return redirect("admin:index")
    return redirect("workspaces:dashboard")


@extend_schema(
    summary="Health of the portal and the services it needs",
    responses={200: dict},
    description="The database and broker checks: 200 when all pass, else 503. No sign-in needed.",
)
@api_view(["GET"])
@permission_classes([AllowAny])
def health_view(request: Request) -> Response:
    report = health.check_all()
    return Response(report, status=200 if report["status"] == "ok" else 503)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; with METRICS_TOKEN set, a Bearer token is required, and
    without one the figures are shown only in development (METRICS_OPEN)."""
    from django.conf import settings
    from django.utils.crypto import constant_time_compare
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from portal.core import metrics

    token = settings.METRICS_TOKEN
    if not token and not settings.METRICS_OPEN:
        return HttpResponse(
            "metrics are off: set METRICS_TOKEN\n", status=403, content_type="text/plain"
        )
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not constant_time_compare(given, token):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    return HttpResponse(
        generate_latest(metrics.scrape_registry()), content_type=CONTENT_TYPE_LATEST
    )
