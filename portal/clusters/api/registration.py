"""The calls nodes and the old system's scripts make.

- ``GET /api/clusters/post-install?mac=…``: the node's post-install script (anonymous: the
  node has nothing yet; only a node in an active run, rebooting or installing, gets one).
- ``POST /api/clusters/register``: the node's signed registration (anonymous, authenticated
  by its one-time token and HMAC; see portal/clusters/actions/registration.py).
- ``GET /api/clusters/registered-nodes.json``: the old export (admins).
- ``GET|POST /api/clusters/legacy?action=reprovision[&mac=…][&timeout=…]``: the old trigger
  (admins): one node by MAC, or every node of every cluster.
- ``POST /api/clusters/legacy/register``: the old registration without a token (admins).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.lockout import client_ip
from portal.clusters import actions, selectors
from portal.clusters.actions.registration import HEADERS, Registered
from portal.clusters.api import serializers
from portal.clusters.models import Cluster, ClusterNode
from portal.clusters.naming import normalise_mac
from portal.core.errors import NotFound, PortalError
from portal.core.tenancy import IsAdmin

SIGNED_HEADERS = [
    OpenApiParameter(header, str, OpenApiParameter.HEADER, required=True, description=what)
    for header, what in (
        (HEADERS["token"], "The node-run's one-time token (from its post-install script)."),
        (HEADERS["timestamp"], "Unix time in seconds (at most 5 minutes off)."),
        (HEADERS["nonce"], "16-64 characters [A-Za-z0-9_-], never used twice."),
        (
            HEADERS["signature"],
            'hex(HMAC-SHA256(bytes.fromhex(secret), timestamp + "\\n" + nonce + "\\n" + body))',
        ),
    )
]
REGISTRATION_BODY = {
    "application/json": {
        "type": "object",
        "required": ["mac", "hostname", "ip", "link0", "status"],
        "properties": {
            "mac": {"type": "string"},
            "hostname": {"type": "string"},
            "ip": {"type": "string"},
            "link0": {"type": "string"},
            "status": {"type": "string", "enum": ["post-install-complete"]},
        },
    }
}


def _registered(result: Registered) -> Response:
    node_run = result.node_run
    body = {
        "status": node_run.status,
        "node": node_run.cluster_node.node.name,
        "run": node_run.run_id,
        "repeated": result.repeated,
    }
    return Response(serializers.RegisteredSerializer(body).data)


class RegisterView(APIView):
    """A node's signed registration after its install (status post-install-complete)."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=REGISTRATION_BODY,
        parameters=SIGNED_HEADERS,
        responses={200: serializers.RegisteredSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Registered (or the same registration again: "repeated"). 400 a header or field,
        403 a stale, unknown, expired or forged request or another node's token, 409 a
        replayed nonce, a token used for another registration or a node not expecting one."""
        body = request._request.body  # the signed bytes, before any parsing
        return _registered(actions.register(request.headers, body))


class PostInstallView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("mac", str, required=True)],
        responses={
            (200, "text/x-shellscript"): OpenApiResponse(OpenApiTypes.STR),
            404: OpenApiResponse(description="No node with this MAC is waiting for it."),
        },
        auth=[],
    )
    def get(self, request: Request) -> HttpResponse:
        """The post-install script of the node with this MAC (rebooting or installing in an
        active run; it moves to installing). 404 otherwise, the same for an unknown MAC."""
        script = actions.issue_script(
            request.query_params.get("mac", ""),
            request.build_absolute_uri("/"),
            client_ip=client_ip(request._request),
        )
        response = HttpResponse(script, content_type="text/x-shellscript; charset=utf-8")
        response["Cache-Control"] = "no-store"  # a token and a secret: never cached
        return response


class RegisteredNodesView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        """The old registered-nodes.json: registered nodes keyed by MAC, with the old
        reprovision_status derived from each node's latest run (read-only)."""
        return Response(selectors.registered_nodes())


class LegacyTriggerView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter("action", str, required=True, enum=["reprovision"]),
            OpenApiParameter("mac", str, description="One node; without it, every node."),
            OpenApiParameter("timeout", int, description="Run deadline in minutes."),
        ],
        responses={202: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        """The old trigger: reprovision the node with the MAC (or all nodes, one run per
        cluster). 202 with the runs started."""
        request.data  # noqa: B018  (a body, though unused, is refused as every API body is)
        params = request.query_params
        if params.get("action") != "reprovision":
            raise PortalError("The only action is 'reprovision'.", field="action")
        timeout = _minutes(params.get("timeout"))
        if params.get("mac"):
            node = _node_by_mac(params["mac"])
            if node.cluster is None:
                raise PortalError(f"Node {node.node.name} is in no cluster.", field="mac")
            runs = [actions.start_run(request.user, node.cluster, [node], timeout)]
        else:
            clusters = Cluster.objects.filter(nodes__isnull=False).distinct().order_by("name")
            if not clusters:
                raise PortalError("No cluster has nodes.", field="mac")
            with transaction.atomic():  # every cluster's run, or none
                runs = [actions.start_run(request.user, c, actions.ALL, timeout) for c in clusters]
        body = {
            "status": "started",
            "runs": [run.pk for run in runs],
            "nodes": sorted(n.mac for run in runs for n in run.nodes.all()),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        """The old scripts sent the trigger as a GET; it is the same call."""
        return self.post(request)


class LegacyRegisterView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=REGISTRATION_BODY, responses={200: serializers.RegisteredSerializer})
    def post(self, request: Request) -> Response:
        """The old registration (no token): an admin's API token instead. link0
        defaults to ip (the old body had none)."""
        data = request.data
        if isinstance(data, dict) and "link0" not in data:
            data = {**data, "link0": data.get("ip")}
        return _registered(actions.legacy_register(data, by=request.user))


def _minutes(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 6:
        raise PortalError("The timeout is a whole number of minutes.", field="timeout")
    return int(value)


def _node_by_mac(mac: str) -> ClusterNode:
    try:
        normalised = normalise_mac(mac)
    except ValueError as exc:
        raise PortalError(str(exc), field="mac") from None
    node = ClusterNode.objects.select_related("node", "cluster").filter(mac=normalised).first()
    if node is None:
        raise NotFound(f"No node with MAC {normalised}.", field="mac")
    return node
