from typing import Any

from rest_framework import serializers

from portal.core.api.fields import StrictCharField
from portal.core.api.writable import RefuseUnwritableFieldsMixin, refused_fields_of
from portal.workspaces.explain import status_help
from portal.workspaces.models import Workspace, WorkspaceEvent


class WorkspaceSerializer(serializers.ModelSerializer):
    customer: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    node: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    url = serializers.CharField(read_only=True, help_text="Where the IDE answers (Traefik).")
    busy = serializers.BooleanField(read_only=True, help_text="A job is acting on it now.")
    current_job: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    current_job_status = serializers.CharField(
        source="current_job.status", read_only=True, default=None
    )
    status_help = serializers.SerializerMethodField(
        help_text="The status reason in plain words, with what to do next (empty when there "
        "is nothing to explain); status_reason keeps the raw reason."
    )

    class Meta:
        model = Workspace
        fields = [
            "id",
            "name",
            "slug",
            "url",
            "customer",
            "owner",
            "node",
            "port",
            "linux_username",
            "status",
            "status_reason",
            "status_help",
            "status_changed_at",
            "busy",
            "current_job",
            "current_job_status",
            "disk_quota_gb",
            "cpu_limit",
            "memory_limit_mb",
            "quota_backend",
            "quota_used_bytes",
            "health",
            "created_at",
            "updated_at",
            "deleted_at",
        ]
        read_only_fields = fields

    def get_status_help(self, workspace) -> str:
        return status_help(workspace.status, workspace.status_reason)


class WorkspaceCreateSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """A new workspace: its display name and, optionally, its subdomain (admins also name
    the customer and the owner). The portal chooses node, port, Linux user, quota and
    status: sending one is a 400."""

    # Field shapes only; names, limits and capacity are checked by the create action.

    refused_fields = refused_fields_of(
        WorkspaceSerializer, writable=["name", "slug", "customer", "owner"]
    )

    name = StrictCharField(
        max_length=1000, trim_whitespace=False, help_text="Display name (1-100 characters)."
    )
    slug = StrictCharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        help_text="Subdomain; default: derived from the name.",
    )
    customer = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Customer id; default: your only customer. Required for admins.",
    )
    owner = StrictCharField(
        max_length=150,
        required=False,
        help_text="Username of the owner (admins only); default: you.",
    )


class WorkspaceUpdateSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """Only the display name changes (the subdomain stays); any other field is a 400."""

    refused_fields = refused_fields_of(WorkspaceSerializer, writable=["name"])

    name = StrictCharField(max_length=1000, trim_whitespace=False)


class WorkspaceLogsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workspace
        fields = ["id", "recent_logs", "logs_fetched_at", "current_job", "busy"]
        read_only_fields = fields


class WorkspaceStatusSerializer(serializers.ModelSerializer):
    status_help = serializers.SerializerMethodField(
        help_text="The status reason in plain words, with what to do next."
    )

    class Meta:
        model = Workspace
        fields = [
            "id",
            "status",
            "status_reason",
            "status_help",
            "health",
            "quota_backend",
            "quota_used_bytes",
            "current_job",
            "busy",
        ]
        read_only_fields = fields

    def get_status_help(self, workspace) -> str:
        return status_help(workspace.status, workspace.status_reason)


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(read_only=True)


class JobAcceptedSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="The job doing it; follow /api/jobs/{id}/stream/.")
    workspace = WorkspaceSerializer()


class WorkspaceEventSerializer(serializers.ModelSerializer):
    by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = WorkspaceEvent
        fields = ["id", "at", "from_status", "to_status", "message", "job", "by"]
        read_only_fields = fields


class ForceDeleteSerializer(serializers.Serializer):
    """The query of `DELETE /api/workspaces/{id}/`: `?force=true` is an admin's forced delete."""

    force = serializers.BooleanField(required=False, default=False)
