from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel
from portal.labs.choices import SessionStatus
from portal.labs.instructions import validate_instructions

script_path_validator = RegexValidator(
    r"^/[A-Za-z0-9._/-]+$",
    "An absolute path on the lab server (letters, digits, '.', '_', '-', '/').",
)


class Lab(TimeStampedModel):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    server = models.ForeignKey(
        "nodes.Node",
        on_delete=models.PROTECT,
        related_name="labs",
        help_text="The lab server the scripts run on.",
    )
    provision_script_path = models.CharField(max_length=500, validators=[script_path_validator])
    cleanup_script_path = models.CharField(max_length=500, validators=[script_path_validator])
    default_duration = models.DurationField(
        default=timedelta(hours=4), validators=[MinValueValidator(timedelta(minutes=1))]
    )
    enabled = models.BooleanField(default=True)
    allow_concurrent_sessions = models.BooleanField(
        default=False, help_text="May a user hold more than one live session of this lab?"
    )
    access_instructions = models.TextField(
        blank=True,
        validators=[validate_instructions],
        help_text="How a user gets in, shown with an active session (plain text). "
        "{namespace}, {username} and {lab} are filled in; {{ for a literal brace.",
    )
    self_service = models.BooleanField(
        default=False,
        help_text="Signed-in users may start a session themselves on My labs (for the lab's "
        "default duration); otherwise only admins assign it.",
    )
    user_extend_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(60 * 24 * 31)],
        help_text="Users may extend their active session once by this many minutes "
        "(0: they may not).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class LabSessionQuerySet(models.QuerySet):
    def visible_to(self, user):
        if not (user and user.is_authenticated):
            return self.none()
        if user.is_staff:
            return self
        return self.filter(user=user)

    def due_for_cleanup(self, now=None):
        return self.filter(access_expiry__lte=now or timezone.now()).exclude(
            status__in=[SessionStatus.EXPIRED, SessionStatus.EXPIRING]
        )


namespace_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", "Lower-case letters, digits, -.")


S = SessionStatus


class LabSession(StatusModel, TimeStampedModel):
    TRANSITIONS = {  # from -> the statuses it may move to
        S.REQUESTED: {S.PROVISIONING, S.ACTIVE, S.REQUESTED, S.FAILED, S.EXPIRING, S.EXPIRED},
        S.PROVISIONING: {S.ACTIVE, S.REQUESTED, S.FAILED, S.EXPIRING},
        S.ACTIVE: {S.EXPIRING},
        S.FAILED: {S.REQUESTED, S.EXPIRING},
        S.EXPIRING: {S.EXPIRED, S.CLEANUP_FAILED, S.EXPIRING},
        S.CLEANUP_FAILED: {S.EXPIRING},
    }
    TERMINAL = frozenset({S.EXPIRED})
    STATUS_REASON_FIELD = "last_error"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_sessions"
    )
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="sessions")
    namespace = models.CharField(max_length=63, unique=True, validators=[namespace_validator])
    access_start = models.DateTimeField(default=timezone.now)
    access_expiry = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=20, choices=SessionStatus.choices, default=SessionStatus.REQUESTED, db_index=True
    )
    provisioned = models.BooleanField(default=False)
    token_hash = models.CharField(
        max_length=128, editable=False, help_text="SHA-256 of the session token (shown once)."
    )
    attempts = models.PositiveIntegerField(default=0)
    waiting_for_server = models.BooleanField(default=False)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_output = models.TextField(blank=True)
    last_rc = models.IntegerField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_extended_at = models.DateTimeField(
        null=True, blank=True, help_text="When the user used their one extension."
    )

    objects = LabSessionQuerySet.as_manager()

    class Meta(StatusModel.Meta):
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.lab} for {self.user} ({self.status})"

    def clean(self):
        if self.access_expiry and self.access_start and self.access_expiry <= self.access_start:
            raise ValidationError({"access_expiry": "Expiry must be after the start."})

    @property
    def time_left(self) -> timedelta:
        return max(timedelta(0), self.access_expiry - timezone.now())
