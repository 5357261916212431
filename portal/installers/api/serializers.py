"""The catalogue as the API shows it: read from Manifest values, never from models."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.installers.choices import InputType


class OsRequirementsSerializer(serializers.Serializer):
    family = serializers.ListField(
        source="os_family", child=serializers.CharField(), help_text="e.g. debian, ubuntu."
    )
    min_version = serializers.CharField(source="os_min_version")


class ResourceRequirementsSerializer(serializers.Serializer):
    min_ram_mb = serializers.IntegerField(allow_null=True)
    min_disk_mb = serializers.IntegerField(allow_null=True)


class InstallerSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    author = serializers.CharField()
    os_requirements = OsRequirementsSerializer(source="*")
    resource_requirements = ResourceRequirementsSerializer(source="*")
    idempotent = serializers.BooleanField(help_text="A rerun changes nothing on the node.")
    timeout_seconds = serializers.IntegerField()
    uninstall = serializers.SerializerMethodField(help_text="It has an uninstall script.")
    sha256 = serializers.CharField(help_text="Over every file of the installer's directory.")

    def get_uninstall(self, manifest) -> bool:
        return manifest.uninstall_script is not None


class InputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The script reads it as NAME (uppercase).")
    type = serializers.ChoiceField(choices=InputType.choices)
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField()
    required = serializers.BooleanField()  # type: ignore[assignment]
    default = serializers.SerializerMethodField(help_text="null: none (never for secrets).")
    validation = serializers.SerializerMethodField()
    step = serializers.FloatField(allow_null=True, help_text="number only.")
    visible_if = serializers.SerializerMethodField(help_text="Shown only when this holds.")
    sensitive = serializers.BooleanField()
    generate = serializers.BooleanField(help_text="password: generated when not given.")

    @extend_schema_field(OpenApiTypes.ANY)
    def get_default(self, spec):
        return None if spec.sensitive else spec.default

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_validation(self, spec):
        keys = ("pattern", "min_length", "max_length", "min_value", "max_value")
        rules = {key: getattr(spec, key) for key in keys if getattr(spec, key) is not None}
        if spec.allowed_values is not None:
            rules["allowed_values"] = list(spec.allowed_values)
        return rules

    def get_visible_if(self, spec) -> str | None:
        return spec.visible_if.source if spec.visible_if else None


class InstallerDetailSerializer(InstallerSerializer):
    inputs = InputSerializer(many=True)


class CheckedInputsSerializer(serializers.Serializer):
    installer = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField()
    values = serializers.DictField(
        child=serializers.JSONField(),
        help_text="The visible, non-sensitive inputs, coerced to their types, defaults filled.",
    )
    sensitive = serializers.ListField(
        child=serializers.CharField(), help_text="Sensitive inputs given (values never shown)."
    )
    generated = serializers.ListField(
        child=serializers.CharField(),
        help_text="Passwords the install will generate (shown once, by the install).",
    )
    visible = serializers.ListField(child=serializers.CharField())
    hidden = serializers.ListField(
        child=serializers.CharField(), help_text="Absent: not validated, stored or passed."
    )


class VisibilitySerializer(serializers.Serializer):
    visible = serializers.ListField(child=serializers.CharField())
    hidden = serializers.ListField(child=serializers.CharField())
