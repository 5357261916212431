import threading
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from portal.core.api.fields import StrictCharField
from portal.core.api.writable import RefuseUnwritableFieldsMixin, refused_fields_of
from portal.core.errors import PortalError
from portal.jobs.actions import NamedNodes, nodes_named
from portal.jobs.models import Job, JobEvent


class JobSerializer(serializers.ModelSerializer):
    nodes = serializers.SerializerMethodField()
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    target = serializers.SerializerMethodField()
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "playbook",
            "limit",
            "nodes",
            "extra_vars",
            "sensitive_names",
            "check_mode",
            "action",
            "target",
            "customer",
            "requested_by",
            "queue",
            "status",
            "rc",
            "reason",
            "timeout",
            "idle_timeout",
            "created_at",
            "dispatched_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "host_summary",
            "worker",
            "heartbeat_at",
            "cancel_requested",
            "event_count",
            "attempt",
            "retry_of",
        ]
        read_only_fields = fields

    def get_nodes(self, job: Job) -> list[str]:
        # A job just launched carries its nodes (no query); others use the prefetch.
        nodes = getattr(job, "launched_nodes", None)
        return [node.name for node in (nodes if nodes is not None else job.nodes.all())]

    def get_target(self, job: Job) -> dict | None:
        if job.target_type is None:
            return None
        return {"type": f"{job.target_type.app_label}.{job.target_type.model}", "id": job.target_id}

    def get_duration_seconds(self, job: Job) -> float | None:
        return job.duration.total_seconds() if job.duration else None


_per_thread = threading.local()


def job_body(job: Job) -> dict:
    """``JobSerializer(job).data`` without building the serializer's fields again: a
    ModelSerializer derives them from the model on every instance, which was the largest
    CPU cost of a launch's response. One serializer per thread, fields built once."""
    serializer = getattr(_per_thread, "job_serializer", None)
    if serializer is None:
        serializer = _per_thread.job_serializer = JobSerializer()
    return serializer.to_representation(job)


class LaunchSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """What an operator may launch directly: any playbook under playbooks/.

    The job's other fields (status, customer, requested_by, queue, ...) are the portal's:
    sending one is a 400 naming it."""

    refused_fields = refused_fields_of(
        JobSerializer,
        writable=["playbook", "limit", "nodes", "extra_vars", "check_mode", "timeout"],
    )

    playbook = StrictCharField(max_length=200)
    limit = StrictCharField(max_length=1000, required=False, allow_blank=True, default="")
    # An empty list is refused: left out, nodes means every enabled node (as ansible-playbook
    # without a limit), which a client sending "no nodes selected" never means.
    nodes = serializers.ListField(
        child=StrictCharField(max_length=63),
        required=False,
        allow_empty=False,
        error_messages={
            "empty": "Name at least one node, or leave nodes out to run on the limit's nodes "
            "(no limit: every enabled node)."
        },
    )

    def validate_nodes(self, names: list[str]) -> NamedNodes:
        """One query for all the names (a SlugRelatedField makes one per name), of the
        fields the launch reads."""
        found = nodes_named(names)
        known = {node.name for node in found}
        missing = [name for name in names if name not in known]
        if missing:
            raise serializers.ValidationError(f"Object with name={missing[0]} does not exist.")
        return found

    extra_vars = serializers.JSONField(required=False, default=dict)
    check_mode = serializers.BooleanField(required=False, default=False)
    timeout = serializers.IntegerField(required=False, min_value=1, max_value=86400)


def validated_launch(data: Any) -> dict[str, Any]:
    """``LaunchSerializer(data=data)``'s validated data, or its ValidationError. DRF deep-copies
    a serializer's declared fields for every instance, a sixth of the launch view's own CPU:
    one serializer per thread is validated again instead, as ``job_body`` renders. It keeps
    nothing of a request once it has answered (the body may hold secrets)."""
    serializer = getattr(_per_thread, "launch_serializer", None)
    if serializer is None:
        serializer = _per_thread.launch_serializer = LaunchSerializer()
    serializer.initial_data = data
    try:
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
    finally:
        for state in ("initial_data", "_validated_data", "_errors", "_data"):
            serializer.__dict__.pop(state, None)


class RelaunchSerializer(serializers.Serializer):
    failed_only = serializers.BooleanField(
        default=False, help_text="Limit the new run to the hosts that failed or were unreachable."
    )


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = [
            "counter",
            "event",
            "uuid",
            "parent_uuid",
            "host",
            "task",
            "play",
            "role",
            "changed",
            "failed",
            "stdout",
            "start_line",
            "end_line",
            "created",
            "event_data",
        ]
        read_only_fields = fields


def events_after_param(query: Mapping[str, Any]) -> int | None:
    """`?after=N` of the events list: a whole number of digits, or absent (None)."""
    after = query.get("after")
    if after is None:
        return None
    if not (after.isascii() and after.isdigit()):
        raise PortalError("Must be a non-negative integer.", field="after")
    return int(after)
