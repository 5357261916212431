"""Updates and rollouts: the source API's GET /api/updates (id, version, description,
rollout_status, created_at, completed_at) and the portal's rollouts.

Everyone signed in reads (customers only what touched their VMs, and of a rollout only
their VMs' results: portal/fleet/rollout_selectors.py); admins write. The views declare;
portal.fleet.actions.rollouts decides (400 naming the field, 409 on a move the rollout's
status does not allow).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api.pagination import SourceListPagination
from portal.core.errors import PortalError
from portal.core.tenancy import IsAdmin
from portal.fleet import rollout_selectors as selectors
from portal.fleet.actions import rollouts as actions
from portal.fleet.choices import FleetTier, RolloutStatus
from portal.fleet.models import Rollout, RolloutTarget, Update


class UpdateSerializer(serializers.ModelSerializer):
    """The source API's update, plus the latest rollout's id."""

    rollout_status = serializers.ChoiceField(choices=RolloutStatus.choices, read_only=True)
    completed_at = serializers.SerializerMethodField()
    latest_rollout_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Update
        fields = [
            "id",
            "version",
            "description",
            "rollout_status",
            "created_at",
            "completed_at",
            "latest_rollout_id",
        ]
        read_only_fields = fields

    def get_completed_at(self, update: Any) -> str | None:
        if update.rollout_status != RolloutStatus.COMPLETED or update.latest_finished_at is None:
            return None
        return serializers.DateTimeField().to_representation(update.latest_finished_at)


class UpdateCreateSerializer(serializers.Serializer):
    """Documents the body; the action checks it (errors name the field)."""

    version = serializers.CharField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True)
    playbook = serializers.CharField(required=False, help_text="Default: fleet_update.yml.")
    extra_vars = serializers.DictField(
        required=False,
        help_text="Variables of every VM's update job, e.g. fleet_update_check_command, "
        "fleet_update_fail.",
    )


class TargetSerializer(serializers.ModelSerializer):
    vm_id = serializers.IntegerField(read_only=True)
    hostname = serializers.CharField(source="vm.node.name", read_only=True)
    customer_id = serializers.IntegerField(source="vm.customer_id", read_only=True)
    job_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = RolloutTarget
        fields = [
            "vm_id",
            "hostname",
            "customer_id",
            "wave",
            "status",
            "previous_version",
            "job_id",
            "reason",
            "started_at",
            "soak_until",
            "finished_at",
        ]
        read_only_fields = fields


class RolloutSerializer(serializers.ModelSerializer):
    update_id = serializers.IntegerField(read_only=True)
    version = serializers.CharField(source="update.version", read_only=True)

    class Meta:
        model = Rollout
        fields = [
            "id",
            "update_id",
            "version",
            "status",
            "reason",
            "waves",
            "soak_seconds",
            "failure_limit",
            "max_unavailable",
            "current_wave",
            "selection",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RolloutDetailSerializer(RolloutSerializer):
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    wave_progress = serializers.ListField(child=serializers.DictField(), read_only=True)
    # The targets the user may see (rollout_detail sets them): never the whole relation.
    targets = TargetSerializer(source="visible_targets", many=True, read_only=True)

    class Meta(RolloutSerializer.Meta):
        fields = [*RolloutSerializer.Meta.fields, "counts", "wave_progress", "targets"]
        read_only_fields = fields


class StartRolloutSerializer(serializers.Serializer):
    """Documents the body; the action checks it (errors name the field)."""

    waves = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text='Cumulative counts or shares, the last covering all (default ["1", "10%", '
        '"50%", "100%"]).',
    )
    soak_seconds = serializers.IntegerField(required=False, min_value=0, help_text="Default 300.")
    failure_limit = serializers.IntegerField(
        required=False, min_value=0, help_text="Halts when more VMs fail (default 0)."
    )
    max_unavailable = serializers.IntegerField(required=False, min_value=1, help_text="Default 1.")
    tier = serializers.ChoiceField(choices=FleetTier.choices, required=False)
    customer_id = serializers.IntegerField(required=False)
    vm_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    start = serializers.BooleanField(required=False, help_text="false: plan it (pending) only.")


def rollout_detail(rollout: Rollout, user: Any) -> dict[str, Any]:
    targets = selectors.visible_targets(rollout, user)
    rollout.counts = selectors.target_counts(targets)  # type: ignore[attr-defined]
    rollout.wave_progress = selectors.wave_progress(targets)  # type: ignore[attr-defined]
    rollout.visible_targets = list(targets)  # type: ignore[attr-defined]
    return hidden_for_customers(dict(RolloutDetailSerializer(rollout).data), user)


def hidden_for_customers(row: dict[str, Any], user: Any) -> dict[str, Any]:
    """A customer's view of a rollout: without its reason and selection (they may name
    other customers' VMs and customers)."""
    if not selectors.sees_all(user):
        row["reason"], row["selection"] = "", {}
    return row


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise PortalError("A JSON object.", field="body")
    return dict(request.data)


class UpdateListView(generics.GenericAPIView):
    """Updates, newest first, as the source's plain JSON array (pages in the Link header).
    POST creates one (admins)."""

    serializer_class = UpdateSerializer
    pagination_class = SourceListPagination

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Update]:
        return selectors.visible_updates(self.request.user)

    @extend_schema(responses={200: UpdateSerializer(many=True)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(UpdateSerializer(page, many=True).data)

    @extend_schema(request=UpdateCreateSerializer, responses={201: UpdateSerializer})
    def post(self, request: Request) -> Response:
        body = _body(request)
        unknown = sorted(set(body) - set(UpdateCreateSerializer().fields))
        if unknown:
            raise PortalError(f"Unknown field {unknown[0]!r}.", field=unknown[0])
        update = actions.create_update(request.user, **body)
        shown = selectors.update_for(request.user, update.pk)
        return Response(UpdateSerializer(shown).data, status=status.HTTP_201_CREATED)


class UpdateDetailView(APIView):
    """One update in the source shape (a customer: only one that touched their VMs)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UpdateSerializer})
    def get(self, request: Request, update_id: str) -> Response:
        return Response(UpdateSerializer(selectors.update_for(request.user, int(update_id))).data)


class UpdateRolloutsView(APIView):
    """An update's rollouts (GET); POST starts one (admins): 400 naming the field, 409 when
    a chosen VM is in another active rollout."""

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses={200: RolloutSerializer(many=True)})
    def get(self, request: Request, update_id: str) -> Response:
        update = selectors.update_for(request.user, int(update_id))
        rows = selectors.visible_rollouts(request.user).filter(update=update)
        data = RolloutSerializer(rows.order_by("-created_at", "-pk")[:100], many=True).data
        return Response([hidden_for_customers(dict(row), request.user) for row in data])

    @extend_schema(request=StartRolloutSerializer, responses={201: RolloutDetailSerializer})
    def post(self, request: Request, update_id: str) -> Response:
        update = selectors.update_for(request.user, int(update_id))
        rollout = actions.plan_rollout(request.user, update, _body(request))
        return Response(rollout_detail(rollout, request.user), status=status.HTTP_201_CREATED)


class RolloutListView(generics.GenericAPIView):
    """Rollouts, newest first (paginated), ?status= to narrow."""

    serializer_class = RolloutSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[Rollout]:
        return selectors.visible_rollouts(self.request.user).order_by("-created_at", "-pk")

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=RolloutStatus.values)],
        responses={200: RolloutSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        rows = self.get_queryset()
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RolloutStatus.values:
                raise PortalError(f"One of {', '.join(RolloutStatus.values)}.", field="status")
            rows = rows.filter(status=wanted)
        page = self.paginate_queryset(rows)
        data = RolloutSerializer(page, many=True).data
        return self.get_paginated_response(
            [hidden_for_customers(dict(row), request.user) for row in data]
        )


class RolloutDetailView(APIView):
    """A rollout with its waves' progress and per-VM results (a customer: their VMs')."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: RolloutDetailSerializer})
    def get(self, request: Request, rollout_id: str) -> Response:
        rollout = selectors.rollout_for(request.user, int(rollout_id))
        return Response(rollout_detail(rollout, request.user))


MOVES = {
    "start": lambda rollout, user: actions.start_rollout(rollout),
    "pause": lambda rollout, user: actions.pause_rollout(rollout, by=user),
    "resume": lambda rollout, user: actions.resume_rollout(rollout),
    "abort": lambda rollout, user: actions.abort_rollout(rollout, by=user),
}


class RolloutMoveView(APIView):
    """start (pending), pause (in_progress), resume (paused), abort (not ended): admins;
    409 when the rollout's status does not allow the move."""

    permission_classes = [IsAdmin]
    move = "pause"

    @extend_schema(request=None, responses={200: RolloutDetailSerializer})
    def post(self, request: Request, rollout_id: str) -> Response:
        rollout = selectors.rollout_for(request.user, int(rollout_id))
        MOVES[self.move](rollout, request.user)
        rollout = selectors.rollout_for(request.user, rollout.pk)
        return Response(rollout_detail(rollout, request.user))
