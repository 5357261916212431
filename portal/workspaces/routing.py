"""Routes to workspaces through Traefik: the portal's database is the single source of truth.

Traefik polls :func:`traefik_configuration` through its HTTP provider (a token-protected
endpoint); a workspace is called running only once Traefik's own API lists its router
(:func:`live_routers`), and a deleted workspace's route is gone from Traefik before its unit is.
"""

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

from portal.workspaces.models import Workspace

logger = logging.getLogger(__name__)

# The portal talks to Traefik on the operator's network, never through an outbound proxy.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TraefikUnavailable(Exception):
    pass


def router_name(workspace: Workspace) -> str:
    return f"ws-{workspace.slug}"


def route_host(workspace: Workspace) -> str:
    return f"{workspace.slug}.{settings.WORKSPACES_DOMAIN}"


def _router(workspace: Workspace) -> dict:
    router: dict[str, Any] = {
        "rule": f"Host(`{route_host(workspace)}`)",
        "service": router_name(workspace),
        "entryPoints": list(settings.TRAEFIK_ENTRYPOINTS),
    }
    if settings.TRAEFIK_TLS:
        router["tls"] = (
            {"certResolver": settings.TRAEFIK_CERT_RESOLVER}
            if settings.TRAEFIK_CERT_RESOLVER
            else {}
        )
    return router


def _service(workspace: Workspace) -> dict:
    url = f"http://{workspace.node.address}:{workspace.port}"
    return {"loadBalancer": {"servers": [{"url": url}], "passHostHeader": True}}


def traefik_configuration() -> dict:
    """Traefik's dynamic configuration: one router and one service per routed workspace."""
    routers, services = {}, {}
    for workspace in Workspace.objects.routed().select_related("node").order_by("slug"):
        name = router_name(workspace)
        routers[name] = _router(workspace)
        services[name] = _service(workspace)
    http = {"routers": routers, "services": services} if routers else {}
    return {"http": http} if http else {}


def confirmation_enabled() -> bool:
    return bool(settings.TRAEFIK_API_URL)


def live_routers() -> set[str]:
    """Names of the HTTP-provider routers Traefik serves now (enabled, no errors)."""
    url = settings.TRAEFIK_API_URL.rstrip("/") + "/http/routers?per_page=10000"
    try:
        with _direct.open(url, timeout=5) as response:
            routers = json.load(response)
    except (OSError, ValueError, urllib.error.URLError) as error:
        raise TraefikUnavailable(
            f"Traefik's API at {settings.TRAEFIK_API_URL} did not answer: {error}"
        ) from None
    return {
        router["name"].split("@")[0]
        for router in routers
        if router.get("provider") == "http" and router.get("status") == "enabled"
    }
