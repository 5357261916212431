"""Installations as the API shows them, and the bodies that start a run."""

from typing import Any

from rest_framework import serializers

from portal.core.api.fields import StrictCharField
from portal.core.api.writable import RefuseUnwritableFieldsMixin
from portal.installers.actions.install import MAX_NODES
from portal.installers.models import Installation, InstallationEvent
from portal.jobs.models import Job

INPUTS_HELP = 'The installer\'s inputs by name, e.g. {"server_name": "example.org"}.'


class InstallationSerializer(serializers.ModelSerializer):
    installer = serializers.CharField(source="installer_id", read_only=True)
    node_name = serializers.CharField(source="node.name", read_only=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Who asked for the install."
    )
    inputs = serializers.DictField(
        child=serializers.JSONField(),
        read_only=True,
        help_text="The visible, non-sensitive inputs (secrets are never stored).",
    )
    current_job_status = serializers.CharField(
        source="current_job.status", read_only=True, default=None
    )

    class Meta:
        model = Installation
        fields = [
            "id",
            "node",
            "node_name",
            "installer",
            "version",
            "manifest_sha256",
            "status",
            "reason",
            "exit_code",
            "attempts",
            "failing_line",
            "keep_on_failure",
            "inputs",
            "customer",
            "requested_by",
            "current_job",
            "current_job_status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class InstallationEventSerializer(serializers.ModelSerializer):
    by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = InstallationEvent
        fields = ["id", "at", "from_status", "status", "reason", "exit_code", "job", "by"]
        read_only_fields = fields


class InstallationJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "status", "attempt", "created_at", "started_at", "finished_at", "rc"]
        read_only_fields = fields


class InstallationDetailSerializer(InstallationSerializer):
    log_tail = serializers.CharField(read_only=True, help_text="The script's last lines, masked.")
    history = InstallationEventSerializer(many=True, read_only=True)
    jobs = InstallationJobSerializer(many=True, read_only=True)

    class Meta(InstallationSerializer.Meta):
        fields = [*InstallationSerializer.Meta.fields, "log_tail", "history", "jobs"]
        read_only_fields = fields


class InstallSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """Install one installer of the catalogue on one or several nodes (one job)."""

    refused_fields = frozenset(InstallationSerializer.Meta.fields) - {
        "id",
        "installer",
        "node",
        "inputs",
        "keep_on_failure",
        "created_at",
        "updated_at",
    }

    installer = StrictCharField(max_length=1000, help_text="The installer's id (e.g. nginx).")
    nodes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=MAX_NODES,
        help_text=f"Node ids (1-{MAX_NODES}); one installation per node, one job for all.",
    )
    inputs = serializers.JSONField(required=False, default=dict, help_text=INPUTS_HELP)
    keep_on_failure = serializers.BooleanField(
        required=False,
        default=False,
        help_text="After a failed install, leave the node as it is (no uninstall script).",
    )


class RunAgainSerializer(serializers.Serializer):
    """Inputs that replace the stored ones for this run (sensitive inputs are given anew:
    they were never stored; a generated password left out is kept by the installer, never
    generated again)."""

    inputs = serializers.JSONField(required=False, default=dict, help_text=INPUTS_HELP)


class LaunchedSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="The job doing it; follow /api/jobs/{id}/stream/.")
    installations = InstallationSerializer(many=True)
    generated = serializers.DictField(
        child=serializers.CharField(),
        help_text="Passwords the portal generated, by input: shown in this response only, "
        "never stored in clear and never retrievable again.",
    )
