import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api.pagination import Pagination
from portal.core.tenancy import CustomerScopedQuerysetMixin, IsOperator, is_operator
from portal.jobs import actions, selectors
from portal.jobs.api import serializers
from portal.jobs.api.filtersets import JobFilter
from portal.jobs.api.pagination import JobPagination
from portal.jobs.models import Job
from portal.jobs.stream import job_stream


class EventStreamRenderer(renderers.BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> Any:
        # Only error bodies (404, 403, ...) are rendered here; the stream itself is a
        # StreamingHttpResponse. Render them as JSON, not as the dict's keys.
        if isinstance(data, str | bytes):
            return data
        return json.dumps(data).encode()


class CanCancel(IsOperator):
    message = "Only operators, admins or an owner of the job's customer may cancel it."

    def has_object_permission(self, request: Request, view: APIView, job: Job) -> bool:
        if is_operator(request.user):
            return True
        return selectors.may_change(job, request.user)

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)


class JobViewSet(
    CustomerScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Jobs: every Ansible run, its status and its events. Customers see their customers'
    jobs; operators and admins see all, launch playbooks, cancel and relaunch."""

    queryset = Job.objects.select_related("requested_by", "target_type").prefetch_related("nodes")
    serializer_class = serializers.JobSerializer
    filterset_class = JobFilter
    pagination_class = JobPagination  # by cursor: a deep page costs what the first does
    search_fields = ["playbook", "limit", "reason"]
    ordering_fields = ["created_at", "finished_at", "status"]

    def get_permissions(self) -> Sequence[Any]:
        if self.action in ("create", "relaunch"):
            return [IsOperator()]
        if self.action == "cancel":
            return [CanCancel()]
        return super().get_permissions()

    def get_serializer_class(self) -> type[Any]:
        return {
            "create": serializers.LaunchSerializer,
            "relaunch": serializers.RelaunchSerializer,
            "events": serializers.JobEventSerializer,
        }.get(self.action, serializers.JobSerializer)

    @extend_schema(request=serializers.LaunchSerializer, responses={201: serializers.JobSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Launch a playbook under playbooks/ on nodes or a limit (operators and admins)."""
        data = serializers.validated_launch(request.data)
        job = actions.launch(
            playbook=data["playbook"],
            limit=data["limit"],
            nodes=data.get("nodes") or None,
            extra_vars=data["extra_vars"],
            check_mode=data["check_mode"],
            timeout=data.get("timeout"),
            requested_by=request.user,
            nodes_loaded=bool(data.get("nodes")),
        )
        return Response(serializers.job_body(job), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Events after this counter only.")],
        responses=serializers.JobEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=Pagination)
    def events(self, request: Request, pk: str | None = None) -> Response:
        """The job's events in order, after a counter (`?after=N`)."""
        job = self.get_object()
        after = serializers.events_after_param(request.query_params)
        page = self.paginate_queryset(selectors.events_after(job, after))
        return self.get_paginated_response(serializers.JobEventSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: serializers.JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel the job: its run is stopped (409 if it already ended)."""
        job = actions.cancel(self.get_object(), by=request.user)
        return Response(serializers.JobSerializer(job).data)

    @extend_schema(
        request=serializers.RelaunchSerializer, responses={201: serializers.JobSerializer}
    )
    @action(detail=True, methods=["post"])
    def relaunch(self, request: Request, pk: str | None = None) -> Response:
        """Run the job again as a new job, optionally on its failed hosts only."""
        options = serializers.RelaunchSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        job = actions.relaunch(
            self.get_object(),
            requested_by=request.user,
            failed_only=options.validated_data["failed_only"],
        )
        return Response(serializers.job_body(job), status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "text/event-stream"): OpenApiTypes.STR})
    @action(
        detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, EventStreamRenderer]
    )
    def stream(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """The job's events live as Server-Sent Events until it ends; resume with
        `Last-Event-ID` (or `?after=N`)."""
        job = self.get_object()
        given = request.headers.get("Last-Event-ID") or request.query_params.get("after") or "0"
        after = int(given) if given.isascii() and given.isdigit() else 0
        response = StreamingHttpResponse(
            job_stream(job.pk, after), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
