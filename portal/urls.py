from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.settings import api_settings

from portal.accounts.api.views import me_view
from portal.accounts.views import PasswordResetView
from portal.api_router import router
from portal.core.api.docs import docs_view
from portal.core.api.token import ObtainTokenView
from portal.core.views import health_view, home_view, metrics_view
from portal.workspaces.api.views import traefik_config_view

api_patterns: list[URLPattern | URLResolver] = [
    # The busiest first, as Django tries paths in order: every node's heartbeat (monitoring's
    # five paths), then the router's viewsets (jobs, nodes, workspaces first). No path
    # matches two groups (tests/core/test_urls.py): the order changes only how many patterns
    # a request tries (/api/jobs/ tried 40 before this order).
    path("", include("portal.monitoring.api.urls")),
    path("", include(router.urls)),
    path("health", health_view, name="health"),
    path("me/", me_view, name="me"),
    path("traefik/config", traefik_config_view, name="traefik-config"),
    # DRF's token view names its own parsers; use the bounded ones like every other view.
    path(
        "auth/token/",
        ObtainTokenView.as_view(parser_classes=api_settings.DEFAULT_PARSER_CLASSES),
        name="token",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs_view(url_name="api:schema"), name="docs"),
    path("", include("portal.installers.api.urls")),
    path("", include("portal.clusters.api.urls")),
    path("", include("portal.fleet.api.urls")),
]

urlpatterns = [
    # The API first: most requests are its own (no other path starts with api/).
    path("api/", include((api_patterns, "api"))),
    path("", home_view, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("labs/", include("portal.labs.urls")),
    path("workspaces/", include("portal.workspaces.urls")),
    path("invitations/", include("portal.accounts.urls")),
    path("members/", include("portal.accounts.member_urls")),
    path("monitoring/", include("portal.monitoring.urls")),
    path("installers/", include("portal.installers.urls")),
    path("clusters/", include("portal.clusters.urls")),
    path("fleet/", include("portal.fleet.urls")),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "portal.core.views.bad_request"
handler404 = "portal.core.views.not_found"
handler500 = "portal.core.views.server_error"
