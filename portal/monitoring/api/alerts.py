"""The source fleet API's alerts: GET /api/alerts, POST /api/alerts, PUT
/api/alerts/{id}/resolve. Operators and admins see and write every alert; a customer's
members read the alerts of their customer and of the nodes it owns (its fleet VMs:
portal/monitoring/owners.py); another customer's alert is a 404 to them."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api.pagination import SourceListPagination
from portal.core.errors import NotFound, PortalError
from portal.core.tenancy import IsOperator, is_operator
from portal.monitoring import alerts
from portal.monitoring.choices import AlertType, Severity
from portal.monitoring.models import Alert
from portal.monitoring.owners import visible_alerts


class AlertSerializer(serializers.ModelSerializer):
    vm_id = serializers.IntegerField(
        source="node_id", allow_null=True, read_only=True, help_text="The node's id."
    )
    node = serializers.IntegerField(source="node_id", allow_null=True, read_only=True)
    customer_id = serializers.IntegerField(allow_null=True, read_only=True)
    rule = serializers.IntegerField(source="rule_id", allow_null=True, read_only=True)
    group = serializers.IntegerField(
        source="group_id",
        allow_null=True,
        read_only=True,
        help_text="A down group's (site's) alert: the group's id (its node is null).",
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "vm_id",
            "node",
            "customer_id",
            "type",
            "severity",
            "message",
            "created_at",
            "resolved",
            "resolved_at",
            "rule",
            "group",
            "fired_value",
            "last_value",
        ]
        read_only_fields = fields


class AlertCreateSerializer(serializers.Serializer):
    """Documents the body; actions.check_create_alert validates it (errors name the field)."""

    type = serializers.ChoiceField(choices=AlertType.choices)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    message = serializers.CharField(max_length=2000)
    vm_id = serializers.IntegerField(required=False, allow_null=True)
    customer_id = serializers.IntegerField(required=False, allow_null=True)


def _resolved(raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    value = raw.lower()
    if value not in ("true", "false", "1", "0"):
        raise PortalError("true or false.", field="resolved")
    return value in ("true", "1")


class AlertListView(generics.GenericAPIView):
    """Alerts, newest first, as a JSON array (pages in the Link header); ?resolved=false for
    the open ones. POST raises a manual alert (operators and admins). A customer's members
    see their own alerts only."""

    serializer_class = AlertSerializer
    pagination_class = SourceListPagination

    def get_permissions(self) -> list[Any]:
        return [IsOperator()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Alert]:
        rows = Alert.objects.order_by("-created_at", "-id")
        if not is_operator(self.request.user):
            rows = rows.filter(visible_alerts(self.request.user))
        resolved = _resolved(self.request.query_params.get("resolved"))
        return rows if resolved is None else rows.filter(resolved=resolved)

    @extend_schema(
        parameters=[OpenApiParameter("resolved", bool, description="Only open (false) or not.")],
        responses={200: AlertSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AlertSerializer(page, many=True).data)

    @extend_schema(request=AlertCreateSerializer, responses={201: AlertSerializer})
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise PortalError("A JSON object.", field="body")
        alert = alerts.do_create_alert(dict(request.data))
        return Response(AlertSerializer(alert).data, status=status.HTTP_201_CREATED)


class AlertResolveView(APIView):
    """Resolve an open alert (operators and admins; a customer's member may read its alert
    but not resolve it: 403; another's is a 404). Resolving one already resolved is a 409
    (not a silent 200): the caller learns that someone or the evaluator resolved it first."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: AlertSerializer})
    def put(self, request: Request, alert_id: str) -> Response:
        if not is_operator(request.user):
            if not Alert.objects.filter(visible_alerts(request.user), pk=int(alert_id)).exists():
                raise NotFound(f"No alert {alert_id}.", field="id")
            raise PermissionDenied("Only operators and admins resolve alerts.")
        alert = alerts.do_resolve_alert(int(alert_id))
        return Response(AlertSerializer(alert).data)
