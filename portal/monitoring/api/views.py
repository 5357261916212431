from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.errors import PortalError
from portal.core.tenancy import IsOperator
from portal.monitoring import actions, selectors
from portal.monitoring.api import serializers
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness
from portal.nodes.models import Node


def _hours(raw) -> int:
    limit = settings.MONITORING_METRICS_MAX_HOURS
    if raw is None:
        return 24
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= limit:
        raise PortalError(f"A whole number of hours, 1-{limit}.", field="hours")
    return int(raw)


class NodeMetricsView(APIView):
    """A node's metric history: raw samples for short ranges, 5-minute rollups (min/avg/max)
    for longer ones, with its liveness. Operators and admins only."""

    permission_classes = [IsOperator]

    @extend_schema(
        parameters=[
            OpenApiParameter("hours", int, description="How far back, 1-2160 (default 24).")
        ],
        responses={200: serializers.MetricsSerializer},
    )
    def get(self, request, node_id: int):
        hours = _hours(request.query_params.get("hours"))
        node = get_object_or_404(Node.objects.only("pk"), pk=node_id)
        liveness = (
            NodeLiveness.objects.filter(node=node)
            .only("status", "last_seen_at", "next_due_at")
            .first()
        )
        data = selectors.history(node.pk, hours)
        body = {
            "node": node.pk,
            "hours": hours,
            "status": liveness.status if liveness else Liveness.UNKNOWN,
            "last_seen_at": liveness.last_seen_at if liveness else None,
            "next_due_at": liveness.next_due_at if liveness else None,
            **data,
        }
        return Response(serializers.MetricsSerializer(body).data)


class InstallAgentView(APIView):
    """Install the monitoring agent on a node, or rotate its token by installing again:
    a new token is issued and the `node_agent` playbook runs as a job. Operators and admins."""

    permission_classes = [IsOperator]

    @extend_schema(
        request=serializers.InstallAgentSerializer,
        responses={202: serializers.InstallAgentResponseSerializer},
    )
    def post(self, request, node_id: int):
        node = get_object_or_404(
            Node.objects.select_related("group", "credential").defer("credential__secret"),
            pk=node_id,
        )
        form = serializers.InstallAgentSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = actions.do_install_agent(
            node, interval=form.validated_data.get("interval_seconds"), by=request.user
        )
        return Response({"job": job.pk, "node": node.pk}, status=status.HTTP_202_ACCEPTED)
