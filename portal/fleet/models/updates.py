"""Product updates and their rollouts across the fleet in waves."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel
from portal.fleet.choices import RolloutStatus, TargetStatus

version_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z",
    "A version is 1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit.",
)
DEFAULT_WAVES = ["1", "10%", "50%", "100%"]


def default_waves() -> list[str]:
    return list(DEFAULT_WAVES)


class Update(TimeStampedModel):
    """A product version and the playbook that installs it on a VM."""

    version = models.CharField(max_length=64, unique=True, validators=[version_validator])
    description = models.TextField(blank=True)
    playbook = models.CharField(
        max_length=100,
        default="fleet_update.yml",
        help_text="The playbook that installs this version on one VM.",
    )
    extra_vars = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.version


class Rollout(StatusModel, TimeStampedModel):
    """One update rolled out in waves, each gated by the updated VMs' health for a soak."""

    TRANSITIONS: ClassVar = {
        RolloutStatus.PENDING: {RolloutStatus.IN_PROGRESS, RolloutStatus.ABORTED},
        RolloutStatus.IN_PROGRESS: {
            RolloutStatus.PAUSED,
            RolloutStatus.COMPLETED,
            RolloutStatus.HALTED,
            RolloutStatus.ABORTED,
        },
        # A job that was running when the rollout was paused may still fail it past its limit.
        RolloutStatus.PAUSED: {
            RolloutStatus.IN_PROGRESS,
            RolloutStatus.HALTED,
            RolloutStatus.ABORTED,
        },
    }
    TERMINAL: ClassVar = frozenset(
        {RolloutStatus.COMPLETED, RolloutStatus.HALTED, RolloutStatus.ABORTED}
    )
    STATUS_REASON_FIELD: ClassVar = "reason"
    STATUS_CHANGED_AT_FIELD: ClassVar = "status_changed_at"

    update = models.ForeignKey(Update, on_delete=models.PROTECT, related_name="rollouts")
    status = models.CharField(
        max_length=12, choices=RolloutStatus.choices, default=RolloutStatus.PENDING
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it halted, paused or was aborted.")
    waves = models.JSONField(
        default=default_waves,
        help_text='Wave sizes in order: a count ("1") or a share of the VMs ("10%").',
    )
    soak_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MaxValueValidator(7 * 24 * 3600)],
        help_text="How long a wave's VMs must stay healthy before the next wave starts.",
    )
    failure_limit = models.PositiveIntegerField(
        default=0, help_text="The rollout halts when more VMs than this have failed."
    )
    max_unavailable = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="At most this many VMs are being updated (unavailable) at once.",
    )
    current_wave = models.PositiveSmallIntegerField(default=0)
    selection = models.JSONField(
        default=dict,
        blank=True,
        help_text="What was asked for: tier, customer_id, vm_ids (empty: every VM not on the "
        "version).",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(StatusModel.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.update} rollout #{self.pk}"


class RolloutTarget(TimeStampedModel):
    """One VM of a rollout: its wave, its update job and how it ended."""

    customer_path = "vm__customer"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="targets")
    vm = models.ForeignKey("fleet.VM", on_delete=models.CASCADE, related_name="rollout_targets")
    wave = models.PositiveSmallIntegerField(
        help_text="Its wave, from 1 (0: left out when the rollout started, e.g. in maintenance)."
    )
    status = models.CharField(
        max_length=10, choices=TargetStatus.choices, default=TargetStatus.PENDING
    )
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_version = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True, help_text="Why it failed or was skipped.")
    started_at = models.DateTimeField(null=True, blank=True)
    # When its wave first found the VM busy with another action (it waits, up to a bound).
    waiting_since = models.DateTimeField(null=True, blank=True)
    # Set once the VM first reports the new version: it must stay healthy until then.
    soak_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "wave", "vm_id"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "vm"], name="fleet_target_once_per_rollout")
        ]

    def __str__(self) -> str:
        return f"{self.rollout} / {self.vm}"
