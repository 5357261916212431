from django.conf import settings
from django.http import JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework import status as http
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.core.api.errors import json_error
from portal.core.tenancy import CustomerScopedQuerysetMixin, is_admin
from portal.workspaces import actions, routing, selectors
from portal.workspaces.api import serializers
from portal.workspaces.api.filtersets import WorkspaceFilter
from portal.workspaces.models import Workspace


class MayActOnWorkspace(permissions.IsAuthenticated):
    """Everyone of the customer sees its workspaces; the owner, the customer's owners and
    admins act on them; only the owner and admins see the password."""

    message = "Only the workspace's owner, an owner of its customer or an admin may do this."

    def has_object_permission(self, request, view, workspace):
        if request.method in permissions.SAFE_METHODS and view.action != "password":
            return True
        if view.action == "password":
            self.message = "Only the workspace's owner or an admin may see its password."
            return is_admin(request.user) or workspace.owner_id == request.user.pk
        return selectors.may_act_on(request.user, workspace)


class WorkspaceViewSet(
    CustomerScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Workspaces: code-server IDEs. Others' workspaces are 404; every change is a job."""

    # create and partial_update (PATCH: rename) are this class's own; there is no update,
    # so no PUT (405): a workspace is never replaced whole.
    queryset = Workspace.objects.select_related("owner", "node", "current_job")
    serializer_class = serializers.WorkspaceSerializer
    permission_classes = [MayActOnWorkspace]
    filterset_class = WorkspaceFilter
    search_fields = ["name", "slug"]
    ordering_fields = ["created_at", "name", "status"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return {
            "create": serializers.WorkspaceCreateSerializer,
            "partial_update": serializers.WorkspaceUpdateSerializer,
            "history": serializers.WorkspaceEventSerializer,
            "logs": serializers.WorkspaceLogsSerializer,
            "status": serializers.WorkspaceStatusSerializer,
            "password": serializers.PasswordSerializer,
        }.get(self.action, serializers.WorkspaceSerializer)

    def _workspace(self, workspace, code=http.HTTP_200_OK):
        workspace.refresh_from_db()
        return Response(serializers.WorkspaceSerializer(workspace).data, status=code)

    @extend_schema(
        request=serializers.WorkspaceCreateSerializer,
        responses={201: serializers.WorkspaceSerializer},
    )
    def create(self, request, *args, **kwargs):
        form = serializers.WorkspaceCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        customer, owner = actions.resolve_creator(
            request.user, data.get("customer"), data.get("owner")
        )
        workspace = actions.do_create(
            customer, owner, data["name"], slug=data.get("slug"), by=request.user
        )
        return self._workspace(workspace, http.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.WorkspaceUpdateSerializer,
        responses={200: serializers.WorkspaceSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        """Rename (the display name only: the subdomain stays). Partial: a body without
        `name` changes nothing."""
        workspace = self.get_object()
        form = serializers.WorkspaceUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        if "name" in form.validated_data:
            workspace = actions.do_rename(workspace, form.validated_data["name"], by=request.user)
        return self._workspace(workspace)

    @extend_schema(
        request=None,
        responses={202: serializers.WorkspaceSerializer},
        parameters=[
            OpenApiParameter(
                "force",
                bool,
                required=False,
                description="Admins only: mark the workspace deleted without a job "
                "(its node is unreachable); the node may keep leftovers, "
                "recorded in the history.",
            )
        ],
    )
    def destroy(self, request, *args, **kwargs):
        """Delete: the route first, then the unit, quota, user and home (202: under way;
        409 while a job acts on it). `?force=true` (admins): deleted at once, no job."""
        force = serializers.ForceDeleteSerializer(data=request.query_params)
        force.is_valid(raise_exception=True)
        if force.validated_data.get("force"):
            workspace = actions.do_force_delete(self.get_object(), by=request.user)
        else:
            workspace = actions.do_delete(self.get_object(), by=request.user)
        return self._workspace(workspace, http.HTTP_202_ACCEPTED)

    def _launch(self, request, operation):
        workspace = self.get_object()
        jobs = actions.do_operate([workspace], operation, by=request.user)
        workspace.refresh_from_db()
        return Response(
            {"job": jobs[0].pk, "workspace": serializers.WorkspaceSerializer(workspace).data},
            status=http.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={202: serializers.JobAcceptedSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def start(self, request, pk=None):
        return self._launch(request, "start")

    @extend_schema(request=None, responses={202: serializers.JobAcceptedSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def stop(self, request, pk=None):
        return self._launch(request, "stop")

    @extend_schema(request=None, responses={202: serializers.JobAcceptedSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def restart(self, request, pk=None):
        return self._launch(request, "restart")

    @extend_schema(request=None, responses={202: serializers.JobAcceptedSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def resize(self, request, pk=None):
        """Re-apply the customer's current plan: disk quota, memory and CPU."""
        return self._launch(request, "resize")

    @extend_schema(
        methods=["GET"], request=None, responses={200: serializers.WorkspaceStatusSerializer}
    )
    @extend_schema(
        methods=["POST"], request=None, responses={202: serializers.JobAcceptedSerializer}
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], url_path="status")
    def status(self, request, pk=None):
        """GET: the last known systemd state and health; POST: check them now (a job)."""
        if request.method == "POST":
            return self._launch(request, "status")
        return Response(serializers.WorkspaceStatusSerializer(self.get_object()).data)

    @extend_schema(
        methods=["GET"], request=None, responses={200: serializers.WorkspaceLogsSerializer}
    )
    @extend_schema(
        methods=["POST"], request=None, responses={202: serializers.JobAcceptedSerializer}
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def logs(self, request, pk=None):
        """GET: the recent journal lines last fetched; POST: fetch them now (a job)."""
        if request.method == "POST":
            return self._launch(request, "logs")
        return Response(serializers.WorkspaceLogsSerializer(self.get_object()).data)

    @extend_schema(responses={200: serializers.PasswordSerializer})
    @action(detail=True, methods=["get"], filter_backends=[])
    def password(self, request, pk=None):
        """The IDE password: for the workspace's owner and admins only."""
        workspace = self.get_object()
        return Response({"password": workspace.password})

    @extend_schema(responses={200: serializers.WorkspaceEventSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request, pk=None):
        """Every status change and every job that acted on the workspace, newest first."""
        events = self.get_object().history.select_related("by")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(
            serializers.WorkspaceEventSerializer(page, many=True).data
        )


@require_GET
def traefik_config_view(request):
    """Traefik's HTTP provider: routers and services of the running workspaces.

    Token-protected (``Authorization: Bearer <TRAEFIK_PROVIDER_TOKEN>`` or ``?token=``); the
    endpoint is off until the token is set.
    """
    token = settings.TRAEFIK_PROVIDER_TOKEN
    if not token:
        return json_error(
            404, "The Traefik provider is off: set TRAEFIK_PROVIDER_TOKEN.", "disabled"
        )
    given = request.headers.get("Authorization", "").removeprefix(
        "Bearer "
    ).strip() or request.GET.get("token", "")
    if not constant_time_compare(given, token):
        return json_error(401, "A valid provider token is required.", "not_authenticated")
    return JsonResponse(routing.traefik_configuration())
