"""/api/clusters/: clusters, their nodes and reprovision runs (admins only).

The views declare; portal.clusters.actions decides (checks, rows and tasks in one
transaction) and portal.clusters.selectors reads.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.clusters import actions, selectors
from portal.clusters.api import serializers
from portal.clusters.choices import RunStatus
from portal.clusters.models import Cluster, ClusterNode, ReprovisionRun
from portal.clusters.power import DRIVER_CHOICES
from portal.core.api.filters import IdFilter
from portal.core.errors import NotFound, PortalError
from portal.core.tenancy import IsAdmin

ID = "[0-9]+"


class ClusterFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(max_length=15)

    class Meta:
        model = Cluster
        fields = ["name"]


class ClusterNodeFilter(django_filters.FilterSet):
    cluster = IdFilter(field_name="cluster_id")
    power_driver = django_filters.ChoiceFilter(choices=DRIVER_CHOICES)
    mac = django_filters.CharFilter(method="by_mac", max_length=32)

    class Meta:
        model = ClusterNode
        fields = ["cluster", "power_driver", "mac"]

    def by_mac(self, rows: QuerySet[ClusterNode], name: str, value: str) -> QuerySet[ClusterNode]:
        from portal.clusters.naming import normalise_mac

        try:
            return rows.filter(mac=normalise_mac(value))
        except ValueError:
            return rows.none()


class RunFilter(django_filters.FilterSet):
    cluster = IdFilter(field_name="cluster_id")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)

    class Meta:
        model = ReprovisionRun
        fields = ["cluster", "status"]


class ClusterViewSet(viewsets.ModelViewSet):
    """Proxmox clusters (name ≤ 15 letters, digits or '-'), with their init node."""

    queryset = Cluster.objects.all()
    serializer_class = serializers.ClusterSerializer
    permission_classes = [IsAdmin]
    filterset_class = ClusterFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    lookup_value_regex = ID


class ClusterNodeViewSet(viewsets.ModelViewSet):
    """Bare-metal Proxmox nodes: a profile of an inventory node with its MAC, corosync
    links and power driver (the BMC password is written, never read)."""

    queryset = ClusterNode.objects.select_related("node")
    serializer_class = serializers.ClusterNodeSerializer
    permission_classes = [IsAdmin]
    filterset_class = ClusterNodeFilter
    search_fields = ["node__name", "hostname", "mac"]
    ordering_fields = ["node__name", "created_at", "registered_at"]
    lookup_value_regex = ID


class RunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Reprovision runs: some (or all) nodes of a cluster re-imaged, registered, checked
    ready, then the cluster formed. The detail has every node's timeline."""

    permission_classes = [IsAdmin]
    filterset_class = RunFilter
    ordering_fields = ["created_at", "status"]
    lookup_value_regex = ID

    def get_queryset(self) -> QuerySet[ReprovisionRun]:
        rows = ReprovisionRun.objects.all()
        if self.action == "list":
            return rows.select_related("cluster", "requested_by")
        return selectors.runs_with_timeline(rows)

    def get_serializer_class(self) -> type[Any]:
        if self.action == "list":
            return serializers.RunSerializer
        if self.action == "create":
            return serializers.StartRunSerializer
        return serializers.RunDetailSerializer

    @extend_schema(
        request=serializers.StartRunSerializer, responses={201: serializers.RunDetailSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start a run: 400 naming the field (a node of another cluster, a bad timeout),
        409 when a node is in another active run."""
        form = serializers.StartRunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        cluster = data["cluster"]
        nodes = data["nodes"]
        if nodes != actions.ALL:
            nodes = _cluster_nodes(nodes)
        run = actions.start_run(request.user, cluster, nodes, data.get("timeout_minutes"))
        return self._detail(run, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: serializers.RunDetailSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """End the run: nodes still moving are canceled (with their jobs). 409 if it ended."""
        run = actions.cancel_run(self.get_object(), by=request.user)
        return self._detail(run)

    @extend_schema(
        request=serializers.RetrySerializer,
        responses={200: serializers.RunDetailSerializer},
        parameters=[OpenApiParameter("node_id", int, OpenApiParameter.PATH)],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"nodes/(?P<node_id>[0-9]+)/retry",
        filter_backends=[],
    )
    def retry(
        self, request: Request, pk: str | None = None, node_id: str | None = None
    ) -> Response:
        """Reprovision a failed (timeout, error) node of the run again; an ended run is
        reopened with a new deadline. 409 for a node that did not fail."""
        run = self.get_object()
        form = serializers.RetrySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        node_run = run.node_runs.filter(cluster_node_id=int(node_id or 0)).first()
        if node_run is None:
            raise NotFound(f"Node {node_id} is not in run {run.pk}.", field="node_id")
        actions.retry_node(
            node_run, by=request.user, timeout_minutes=form.validated_data.get("timeout_minutes")
        )
        return self._detail(run)

    def _detail(self, run: ReprovisionRun, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.runs_with_timeline(ReprovisionRun.objects.filter(pk=run.pk)).get()
        return Response(serializers.RunDetailSerializer(fresh).data, status=code)


def _cluster_nodes(ids: list[int]) -> list[ClusterNode]:
    found = ClusterNode.objects.select_related("node").in_bulk(ids)
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        raise PortalError(f"No cluster node {', '.join(missing[:10])}.", field="nodes")
    return [found[pk] for pk in ids]
