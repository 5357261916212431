"""Clusters, their nodes and reprovision runs as the API shows them, and the bodies that
change them (a BMC password is written, never read)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.clusters.actions.runs import MAX_TIMEOUT_MINUTES
from portal.clusters.models import (
    Cluster,
    ClusterNode,
    NodeReprovision,
    ReprovisionEvent,
    ReprovisionRun,
)
from portal.clusters.naming import normalise_mac
from portal.core.api.fields import StrictStringsMixin
from portal.core.api.writable import RefuseUnwritableFieldsMixin


def _as_drf(exc: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(exc.message_dict)
    return serializers.ValidationError(exc.messages)


class ClusterSerializer(StrictStringsMixin, serializers.ModelSerializer):
    node_count = serializers.IntegerField(source="nodes.count", read_only=True)

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "description",
            "init_node",
            "node_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        init = attrs.get("init_node", getattr(self.instance, "init_node", None))
        if init is not None and (self.instance is None or init.cluster_id != self.instance.pk):
            raise serializers.ValidationError(
                {"init_node": "The init node must be a node of this cluster (add it first)."}
            )
        return attrs


class ClusterNodeSerializer(StrictStringsMixin, serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)
    bmc_password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1000,
        style={"input_type": "password"},
        help_text="Stored encrypted; never returned.",
    )
    bmc_password_set = serializers.SerializerMethodField()

    class Meta:
        model = ClusterNode
        fields = [
            "id",
            "node",
            "node_name",
            "cluster",
            "mac",
            "hostname",
            "ip",
            "link0",
            "link1",
            "power_driver",
            "bmc_address",
            "bmc_username",
            "bmc_password",
            "bmc_password_set",
            "power_options",
            "is_member",
            "registered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "hostname",
            "ip",
            "is_member",
            "registered_at",
            "created_at",
            "updated_at",
        ]

    def get_bmc_password_set(self, node: ClusterNode) -> bool:
        return bool(node.bmc_password)

    def validate_mac(self, value: str) -> str:
        """Normalised, then unique (the field's own check compared the form given)."""
        try:
            mac = normalise_mac(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        taken = ClusterNode.objects.filter(mac=mac)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"Another node has MAC {mac}.", code="unique")
        return mac

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The model's own rules (the driver checks its options)."""
        candidate = ClusterNode(
            **{
                name: getattr(self.instance, name)
                for name in ("mac", "power_driver", "power_options")
                if self.instance is not None
            }
        )
        for name, value in attrs.items():
            if name in ("mac", "power_driver", "power_options"):
                setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise _as_drf(exc) from None
        attrs["power_options"] = candidate.power_options
        return attrs


class EventSerializer(serializers.ModelSerializer):
    by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = ReprovisionEvent
        fields = ["at", "from_status", "status", "reason", "job", "by"]
        read_only_fields = fields


class NodeRunSerializer(serializers.ModelSerializer):
    node = serializers.IntegerField(source="cluster_node_id", read_only=True)
    node_name = serializers.CharField(source="cluster_node.node.name", read_only=True)
    mac = serializers.CharField(source="cluster_node.mac", read_only=True)
    legacy_status = serializers.CharField(
        read_only=True, help_text="The old reprovision_status (in_progress, completed, …)."
    )
    timeline = EventSerializer(source="history", many=True, read_only=True)

    class Meta:
        model = NodeReprovision
        fields = [
            "id",
            "node",
            "node_name",
            "mac",
            "status",
            "legacy_status",
            "reason",
            "error_code",
            "status_changed_at",
            "status_expires",
            "deadline",
            "registered_at",
            "ready_checks",
            "current_job",
            "timeline",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Who started the run."
    )

    class Meta:
        model = ReprovisionRun
        fields = [
            "id",
            "cluster",
            "cluster_name",
            "requested_by",
            "status",
            "reason",
            "timeout_minutes",
            "deadline",
            "form_job",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    nodes = NodeRunSerializer(source="node_runs", many=True, read_only=True)
    events = EventSerializer(source="run_events", many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "nodes", "events"]
        read_only_fields = fields


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "integer", "minimum": 1}},
            {"type": "string", "enum": ["all"]},
        ]
    }
)
class NodesField(serializers.Field):
    """A list of cluster-node ids, or "all"."""

    def to_internal_value(self, data: Any) -> list[int] | str:
        if data == "all":
            return "all"
        if (
            not isinstance(data, list)
            or not data
            or len(data) > 500
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in data)
            or not all(1 <= i <= 2**63 - 1 for i in data)
        ):
            raise serializers.ValidationError('Give cluster-node ids (1-500 of them) or "all".')
        return list(data)

    def to_representation(self, value: Any) -> Any:
        return value


class StartRunSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """Reprovision some (or all) of a cluster's nodes, then form the cluster."""

    refused_fields = frozenset({"status", "reason", "deadline", "requested_by", "form_job"})

    cluster = serializers.PrimaryKeyRelatedField(queryset=Cluster.objects.all())
    nodes = NodesField(required=False, default="all")
    timeout_minutes = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TIMEOUT_MINUTES,
        help_text="The run's deadline (default CLUSTERS_RUN_TIMEOUT_MINUTES, 60).",
    )


class RetrySerializer(serializers.Serializer):
    timeout_minutes = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_TIMEOUT_MINUTES,
        help_text="An ended run is reopened with this deadline (default: its own).",
    )


@extend_schema_field(OpenApiTypes.OBJECT)
class AnyObjectField(serializers.JSONField):
    pass


class RegisteredSerializer(serializers.Serializer):
    status = serializers.CharField()
    node = serializers.CharField()
    run = serializers.IntegerField()
    repeated = serializers.BooleanField(
        help_text="true: this node already registered with the same data; nothing changed."
    )
