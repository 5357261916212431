from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers, status

from portal.core.api.errors import error_body
from portal.core.api.fields import StrictCharField, StrictStringsMixin
from portal.core.api.writable import RefuseUnwritableFieldsMixin
from portal.core.errors import PortalError
from portal.labs import actions, instructions, selectors
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Node

MAX_MINUTES = 60 * 24 * 366  # a year: longer windows are typing mistakes
LATEST_YEAR = 2999  # far enough; keeps date arithmetic clear of datetime's year 9999


class DurationMinutesField(serializers.IntegerField):
    """A ``DurationField`` read and written as whole minutes."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_MINUTES)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        minutes = super().run_validation(data)  # an int, range-checked
        return None if minutes is None else timedelta(minutes=minutes)

    def to_representation(self, value):
        return int(value.total_seconds() // 60)


class MomentField(serializers.DateTimeField):
    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if moment.year > LATEST_YEAR:
            raise serializers.ValidationError("Too far in the future.", code="out_of_range")
        return moment


# --- labs ---------------------------------------------------------------------------------


class LabSerializer(RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer):
    server = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Node.objects.all(),
        help_text="Name of a node whose purpose is lab_server.",
    )
    default_duration_minutes = DurationMinutesField(source="default_duration", required=False)
    live_sessions = serializers.SerializerMethodField()

    class Meta:
        model = Lab
        fields = [
            "id",
            "name",
            "description",
            "server",
            "provision_script_path",
            "cleanup_script_path",
            "default_duration_minutes",
            "enabled",
            "allow_concurrent_sessions",
            "access_instructions",
            "user_extend_minutes",
            "live_sessions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_server(self, node):
        if node.purpose != NodePurpose.LAB_SERVER:
            raise serializers.ValidationError(
                f"Node {node.name} is not a lab server (its purpose is {node.purpose}).",
                code="not_a_lab_server",
            )
        return node

    def get_live_sessions(self, lab) -> int:
        return selectors.live_session_count(lab)


class AssignSerializer(serializers.Serializer):
    """Who gets the lab, and for which window (default: now, for the lab's duration)."""

    users = serializers.ListField(
        child=StrictCharField(max_length=150), min_length=1, max_length=1000, help_text="Usernames."
    )
    duration_minutes = DurationMinutesField(
        required=False, help_text="Default: the lab's default duration."
    )
    access_start = MomentField(required=False, help_text="Default: now.")
    access_expiry = MomentField(
        required=False, help_text="Instead of duration_minutes: the end of access."
    )

    def validate_users(self, names):
        names = list(dict.fromkeys(names))
        found = {
            u.username: u
            for u in get_user_model().objects.filter(username__in=names, is_active=True)
        }
        unknown = [name for name in names if name not in found]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown or inactive users: {', '.join(unknown)}.", code="unknown_user"
            )
        return [found[name] for name in names]

    def validate(self, attrs):
        if "duration_minutes" in attrs and "access_expiry" in attrs:
            raise serializers.ValidationError(
                {"duration_minutes": "Give duration_minutes or access_expiry, not both."}
            )
        lab = self.context["lab"]
        start = attrs.get("access_start") or timezone.now()
        expiry = attrs.get("access_expiry") or start + attrs.get(
            "duration_minutes", lab.default_duration
        )
        actions.check_window(start, expiry)  # PortalError → 400 naming access_expiry
        actions.check_lab_usable(lab)  # Conflict → 409 for the whole request
        return {"users": attrs["users"], "start": start, "expiry": expiry}


class AssignResultSerializer(serializers.Serializer):
    """One user's outcome: the session (and its token, shown only here) or the error."""

    user = serializers.CharField()
    session_id = serializers.IntegerField(allow_null=True)
    namespace = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    access_start = serializers.DateTimeField(allow_null=True)
    access_expiry = serializers.DateTimeField(allow_null=True)
    token = serializers.CharField(allow_null=True, help_text="Shown once; only its hash is kept.")
    error = serializers.DictField(allow_null=True, help_text="{status, field, message, code}")

    @staticmethod
    def row(user, session, token, error) -> dict:
        if error is not None:
            return {
                "user": user.username,
                "session_id": None,
                "namespace": None,
                "status": None,
                "access_start": None,
                "access_expiry": None,
                "token": None,
                "error": {
                    "status": error.status_code,
                    "field": error.field,
                    "message": error.message,
                    "code": error.code,
                },
            }
        return {
            "user": user.username,
            "session_id": session.pk,
            "namespace": session.namespace,
            "status": session.status,
            "access_start": session.access_start,
            "access_expiry": session.access_expiry,
            "token": token,
            "error": None,
        }


class AssignResponseSerializer(serializers.Serializer):
    results = AssignResultSerializer(many=True)

    @staticmethod
    def answer(outcomes: list[tuple]) -> tuple[dict, int]:
        """The body and status of an assignment: 201 with every user's outcome, unless
        every user failed: then the API's error body (one error per user, under `users`)
        with the outcomes, and the status the users share (409 when they differ)."""
        rows = [AssignResultSerializer.row(*outcome) for outcome in outcomes]
        errors = [outcome[3] for outcome in outcomes if outcome[3] is not None]
        if len(errors) < len(outcomes):
            return {"results": rows}, status.HTTP_201_CREATED
        codes = {error.status_code for error in errors}
        status_code = codes.pop() if len(codes) == 1 else status.HTTP_409_CONFLICT
        body = error_body(
            status_code,
            [
                ("users", f"{user.username}: {error.message}", error.code)
                for user, _, _, error in outcomes
            ],
        )
        return {**body, "results": rows}, status_code


# --- sessions -----------------------------------------------------------------------------


class LabSessionSerializer(serializers.ModelSerializer):
    """What a user sees of their own session. Never the token or its hash."""

    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    lab_name = serializers.CharField(source="lab.name", read_only=True)
    lab_description = serializers.CharField(source="lab.description", read_only=True)
    time_left_seconds = serializers.SerializerMethodField()
    access_instructions = serializers.SerializerMethodField(
        help_text="How to get in (the lab's instructions with namespace and username filled "
        "in; plain text), while the session is active; else empty."
    )
    user_extend_minutes = serializers.IntegerField(
        source="lab.user_extend_minutes",
        read_only=True,
        help_text="Minutes the user's one extension adds (0: the lab allows none).",
    )
    can_extend = serializers.SerializerMethodField(
        help_text="The user may extend it now: POST /api/lab-sessions/{id}/extend/."
    )

    class Meta:
        model = LabSession
        fields = [
            "id",
            "lab",
            "lab_name",
            "lab_description",
            "user",
            "namespace",
            "status",
            "waiting_for_server",
            "access_start",
            "access_expiry",
            "time_left_seconds",
            "access_instructions",
            "user_extend_minutes",
            "user_extended_at",
            "can_extend",
            "provisioned",
            "attempts",
            "next_retry_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_time_left_seconds(self, session) -> int:
        return int(session.time_left.total_seconds())

    def get_access_instructions(self, session) -> str:
        return instructions.for_session(session) if session.status == "active" else ""

    def get_can_extend(self, session) -> bool:
        try:
            actions.check_user_extend(session, session.user)
        except PortalError:
            return False
        return True


class LabSessionAdminSerializer(LabSessionSerializer):
    assigned_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta(LabSessionSerializer.Meta):
        fields = [*LabSessionSerializer.Meta.fields, "last_rc", "last_output", "assigned_by"]
        read_only_fields = fields


class ExtendSerializer(serializers.Serializer):
    """Extend by `minutes`, or to `until`; neither: by the lab's default duration."""

    minutes = serializers.IntegerField(required=False, min_value=1, max_value=MAX_MINUTES)
    until = MomentField(required=False)

    def validate(self, attrs):
        if "minutes" in attrs and "until" in attrs:
            raise serializers.ValidationError({"until": "Give minutes or until, not both."})
        return attrs


def refuse_admin_extend_options(data, session: LabSession) -> None:
    """A user extends their own session with an empty body: the lab decides how long.
    Sending `minutes` or `until` (an admin's options) is a 400 naming it."""
    sent = set(data.keys()) if hasattr(data, "keys") else set()
    if {"minutes", "until"} & sent:
        raise PortalError(
            "Only admins choose how long; your extension is the lab's "
            f"({session.lab.user_extend_minutes} minutes).",
            field="minutes" if "minutes" in sent else "until",
            code="read_only",
        )
