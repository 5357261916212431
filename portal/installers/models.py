"""Installations: one installer of the catalogue on one node, its jobs and its history.

Every status change goes through :meth:`Installation.move` (the status base,
:class:`portal.core.status.StatusModel`): a guarded ``UPDATE … WHERE status IN`` checked
against ``Installation.TRANSITIONS`` that also writes an :class:`InstallationEvent`. The
script's exit code decides where an install ends (installers/README.md): 0 installed,
1 rejected (never retried), 2 retried by the job engine then failed, 3 needs an operator,
124 failed (timeout). A rejected or uninstalled installation is over: a new one may start.

Only non-secret visible inputs are stored here; sensitive ones live encrypted in the job
(``Job.secret_vars``) while a retry may need them, and are forgotten after the last attempt.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel
from portal.core.tenancy import CustomerOwnedQuerySet
from portal.installers.choices import InstallationStatus

S = InstallationStatus
# An installation in one of these is over: another may start for the same node and installer.
ENDED = frozenset({S.UNINSTALLED, S.REJECTED})
LOG_TAIL_LINES = 50


class InstallationQuerySet(CustomerOwnedQuerySet):
    def live(self) -> InstallationQuerySet:
        return self.exclude(status__in=ENDED)


class Installation(StatusModel, TimeStampedModel):
    customer_path = "customer"

    TRANSITIONS = {  # from -> the statuses it may move to
        S.PENDING: {S.INSTALLING, S.FAILED},  # failed: the job never ran (refused, lost)
        S.INSTALLING: {S.INSTALLED, S.FAILED, S.REJECTED, S.NEEDS_OPERATOR},
        S.INSTALLED: {S.INSTALLING, S.UNINSTALLING},  # reinstall / upgrade; uninstall
        S.FAILED: {S.INSTALLING, S.UNINSTALLING},  # an operator's retry; clean up
        S.NEEDS_OPERATOR: {S.INSTALLING, S.UNINSTALLING},
        S.UNINSTALLING: {S.UNINSTALLED, S.FAILED},
    }
    TERMINAL = ENDED
    STATUS_REASON_FIELD = "reason"

    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="installations")
    installer_id = models.CharField(max_length=64, db_index=True)
    version = models.CharField(max_length=64, help_text="The catalogue's version it ran.")
    manifest_sha256 = models.CharField(max_length=64, help_text="Hash of the installer's files.")
    inputs = models.JSONField(
        default=dict, blank=True, help_text="The visible, non-sensitive inputs (never secrets)."
    )
    customer = models.ForeignKey(
        "accounts.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="installations",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="installations",
    )
    secret_inputs = models.JSONField(
        null=True,
        blank=True,
        help_text="Names of the sensitive inputs the node was given at least once (never their "
        "values): a later run generates a `generate: true` password only for one not in it. "
        "Empty for rows older than the field: every generated password counts as given.",
    )
    keep_on_failure = models.BooleanField(
        default=False,
        help_text="After a failed install, leave the node as it is (no uninstall script) "
        "for debugging.",
    )

    status = models.CharField(max_length=20, choices=S.choices, default=S.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Why it is in its status.")
    exit_code = models.IntegerField(null=True, blank=True, help_text="The script's last exit code.")
    log_tail = models.TextField(
        blank=True, help_text=f"The last {LOG_TAIL_LINES} lines of the script's log, masked."
    )
    failing_line = models.TextField(blank=True, help_text="Where the script failed, if it did.")
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Runs of the script in the current install (retries included)."
    )
    current_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The job acting on the installation now (or last).",
    )
    jobs = models.ManyToManyField(
        "jobs.Job",
        blank=True,
        related_name="installations",
        help_text="Every job that acted on it (one job may serve several nodes).",
    )

    objects = InstallationQuerySet.as_manager()

    class Meta(StatusModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "installer_id"],
                condition=~Q(status__in=sorted(ENDED)),
                name="unique_live_installation_per_node",
                violation_error_message="This installer is already installed (or being "
                "installed) on the node.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.installer_id} {self.version} on {self.node_id} ({self.status})"

    def move(  # type: ignore[override]
        self,
        to: str,
        allowed_from: Any = None,
        *,
        reason: str = "",
        job: Any = None,
        by: Any = None,
        **fields: Any,
    ) -> bool:
        """Guarded status change recorded in the history with the job and who asked."""
        history = {"job": job, "by": by, "exit_code": fields.get("exit_code")}
        return super().move(to, allowed_from, reason=reason, history=history, **fields)

    def record_move(
        self,
        from_status: str,
        to: str,
        reason: str,
        *,
        job: Any = None,
        by: Any = None,
        exit_code: int | None = None,
        **_: Any,
    ) -> None:
        InstallationEvent.objects.create(
            installation_id=self.pk,
            from_status=from_status,
            status=to,
            reason=reason[:2000],
            exit_code=exit_code,
            job=job,
            by=by if by is not None and by.pk else None,
        )

    def note(self, reason: str, *, job: Any = None, by: Any = None, **fields: Any) -> None:
        """Record what happened without a status change (a retry scheduled, a job launched)."""
        Installation.objects.filter(pk=self.pk).update(
            reason=reason, updated_at=timezone.now(), **fields
        )
        InstallationEvent.objects.create(
            installation_id=self.pk,
            from_status=self.status,
            status=self.status,
            reason=reason[:2000],
            exit_code=fields.get("exit_code"),
            job=job,
            by=by if by is not None and by.pk else None,
        )
        self.refresh_from_db()


class InstallationEvent(models.Model):
    """The installation's history: every status change and every job that acted on it."""

    customer_path = "installation__customer"

    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_status = models.CharField(max_length=20, choices=S.choices, blank=True)
    status = models.CharField(max_length=20, choices=S.choices)
    reason = models.TextField(blank=True)
    exit_code = models.IntegerField(
        null=True, blank=True, help_text="The script's exit code when the change came from one."
    )
    job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="installation_events",
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.installation_id}: {self.from_status} → {self.status}"
