from rest_framework import serializers

from portal.core.api.fields import StrictCharField, StrictStringsMixin
from portal.core.api.writable import RefuseUnwritableFieldsMixin
from portal.nodes import hostkeys
from portal.nodes.models import Credential, Node, NodeGroup


class NodeGroupSerializer(
    RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer
):
    class Meta:
        model = NodeGroup
        fields = ["id", "name", "description", "queue", "created_at"]
        read_only_fields = ["created_at"]


class CredentialSerializer(
    RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer
):
    secret = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. On update, leave out to keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ["id", "name", "kind", "username", "secret", "hint", "created_at"]
        read_only_fields = ["hint", "created_at"]

    def validate(self, attrs):
        if self.instance is None and not attrs.get("secret"):
            raise serializers.ValidationError({"secret": "A key or password is required."})
        return attrs


class NodeSerializer(RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer):
    group = serializers.SlugRelatedField(
        slug_field="name", queryset=NodeGroup.objects.all(), required=False, allow_null=True
    )
    credential = serializers.SlugRelatedField(
        slug_field="name", queryset=Credential.objects.all(), required=False, allow_null=True
    )
    routing_queue = serializers.CharField(read_only=True)
    jump_host = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Node.objects.all(),
        required=False,
        allow_null=True,
        help_text="Name of the node to reach this one through (one hop).",
    )
    host_key_fingerprints = serializers.SerializerMethodField(
        help_text="SHA256 fingerprints of the pinned host keys."
    )

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "address",
            "connection",
            "ssh_port",
            "ssh_user",
            "become",
            "purpose",
            "enabled",
            "labels",
            "group",
            "queue",
            "routing_queue",
            "credential",
            "jump_host",
            "host_keys",
            "host_key_fingerprints",
            "host_keys_pinned_at",
            "workspace_root",
            "workspace_quota_backend",
            "workspace_port_start",
            "workspace_port_end",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at", "host_keys_pinned_at"]

    def get_host_key_fingerprints(self, node) -> list[str]:
        return hostkeys.fingerprints(node.host_keys) if node.host_keys else []

    def validate_labels(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Labels must be a mapping of names to values.")
        return value
