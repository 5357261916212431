from rest_framework import serializers

from portal.monitoring.choices import Liveness


class InstallAgentSerializer(serializers.Serializer):
    interval_seconds = serializers.IntegerField(
        required=False,
        min_value=5,
        max_value=3600,
        help_text="Seconds between heartbeats (default MONITORING_HEARTBEAT_INTERVAL, 30).",
    )


class InstallAgentResponseSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="The install job (GET /api/jobs/{id}/).")
    node = serializers.IntegerField()


class MetricPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="Sample time, or the 5-minute bucket's start.")
    cpu_percent = serializers.FloatField(help_text="Raw value, or the bucket's average.")
    memory_percent = serializers.FloatField()
    disk_percent = serializers.FloatField()
    disk_used_gb = serializers.FloatField(help_text="GiB used (the bucket's maximum).")
    load1 = serializers.FloatField(allow_null=True)
    gauges = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        help_text="Raw points only: the agent's extra gauges.",
    )
    samples = serializers.IntegerField(required=False, help_text="Rollups only.")
    cpu_percent_min = serializers.FloatField(required=False, help_text="Rollups only.")
    cpu_percent_max = serializers.FloatField(required=False, help_text="Rollups only.")
    memory_percent_min = serializers.FloatField(required=False, help_text="Rollups only.")
    memory_percent_max = serializers.FloatField(required=False, help_text="Rollups only.")
    disk_percent_min = serializers.FloatField(required=False, help_text="Rollups only.")
    disk_percent_max = serializers.FloatField(required=False, help_text="Rollups only.")
    load1_max = serializers.FloatField(required=False, allow_null=True, help_text="Rollups only.")


class MetricsSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    hours = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Liveness.choices)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    next_due_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField(help_text="'raw' (samples) or '5m' (rollups).")
    points = MetricPointSerializer(many=True)
