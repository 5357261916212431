"""Reprovision runs and each node's part in one, on the status base with deadlines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.clusters.models.base import (
    NODE_DEADLINE_PHASES,
    RUN_ACTIVE,
    DeadlineReasonMixin,
    N,
    R,
    TimedOutHandler,
    _who,
    legacy_status,
    logger,
)
from portal.clusters.models.clusters import Cluster, ClusterNode
from portal.clusters.models.history import ReprovisionEvent
from portal.core.fields import EncryptedTextField
from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel, humane_duration


class ReprovisionRun(DeadlineReasonMixin, StatusModel, TimeStampedModel):
    TRANSITIONS = {
        R.REQUESTED: {R.RUNNING, R.ERROR, R.TIMEOUT, R.CANCELED},
        R.RUNNING: {R.CLUSTERED, R.ERROR, R.TIMEOUT, R.CANCELED},
        R.TIMEOUT: {R.RUNNING, R.CANCELED},  # an operator's retry of a node reopens it
        R.ERROR: {R.RUNNING, R.CANCELED},
    }
    TERMINAL = frozenset({R.CLUSTERED, R.CANCELED})
    # Declared for the checks; the real deadline is the run's own (status_timeout).
    STATUS_TIMEOUTS = {R.REQUESTED: timedelta(minutes=60), R.RUNNING: timedelta(minutes=60)}
    TIMEOUT_STATUS = R.TIMEOUT
    STATUS_REASON_FIELD = "reason"
    on_timed_out = TimedOutHandler()

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reprovision_runs",
    )
    nodes: models.ManyToManyField[ClusterNode, NodeReprovision] = models.ManyToManyField(
        ClusterNode, through="NodeReprovision", related_name="runs"
    )
    timeout_minutes = models.PositiveIntegerField(help_text="The whole run's deadline.")
    deadline = models.DateTimeField(help_text="When the run times out.")
    status = models.CharField(max_length=20, choices=R.choices, default=R.REQUESTED, db_index=True)
    reason = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    form_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The cluster_form.yml job, once every node was ready.",
    )

    class Meta(StatusModel.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.cluster_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in RUN_ACTIVE

    def status_timeout(self, status: str) -> timedelta | None:
        if status not in RUN_ACTIVE:
            return None
        return max(self.deadline - timezone.now(), timedelta(0))

    def timeout_reason(self, status: str, now: datetime) -> str:
        return f"the run's deadline of {self.timeout_minutes} minutes passed"

    def status_timed_out(self, from_status: str) -> None:
        if self.on_timed_out.handler is not None:
            self.on_timed_out.handler(self, from_status)

    def move(  # type: ignore[override]
        self, to: str, allowed_from: Any = None, *, reason: str = "", by: Any = None, **fields: Any
    ) -> bool:
        """Guarded move recorded in the run's timeline and logged; an end stamps finished_at."""
        if to not in RUN_ACTIVE:
            fields.setdefault("finished_at", timezone.now())
        else:
            fields.setdefault("finished_at", None)
        won = super().move(to, allowed_from, reason=reason, history={"by": by}, **fields)
        if won:
            logger.info("reprovision run %s: -> %s %s", self.pk, to, reason)
        return won

    def record_move(
        self, from_status: str, to: str, reason: str, *, by: Any = None, **_: Any
    ) -> None:
        ReprovisionEvent.objects.create(
            run_id=self.pk, from_status=from_status, status=to, reason=reason[:2000], by=_who(by)
        )


class NodeReprovision(DeadlineReasonMixin, StatusModel, TimeStampedModel):
    """One node in one run: requested → rebooting → installing → registered → ready →
    joining → clustered, or timeout / error (with the reason) / canceled."""

    TRANSITIONS = {
        N.REQUESTED: {N.REBOOTING, N.TIMEOUT, N.ERROR, N.CANCELED},
        # registered straight from rebooting: a script baked into the image, never fetched
        N.REBOOTING: {N.INSTALLING, N.REGISTERED, N.TIMEOUT, N.ERROR, N.CANCELED},
        N.INSTALLING: {N.REGISTERED, N.TIMEOUT, N.ERROR, N.CANCELED},
        N.REGISTERED: {N.READY, N.TIMEOUT, N.ERROR, N.CANCELED},
        N.READY: {N.JOINING, N.TIMEOUT, N.ERROR, N.CANCELED},
        N.JOINING: {N.CLUSTERED, N.TIMEOUT, N.ERROR, N.CANCELED},
        N.TIMEOUT: {N.REQUESTED, N.CANCELED},  # retry_node
        N.ERROR: {N.REQUESTED, N.CANCELED},
    }
    TERMINAL = frozenset({N.CLUSTERED, N.CANCELED})
    # Defaults for the checks; settings.CLUSTERS_PHASE_MINUTES and the node's overall
    # deadline decide (status_timeout).
    STATUS_TIMEOUTS = {
        N.REQUESTED: timedelta(minutes=5),
        N.REBOOTING: timedelta(minutes=15),
        N.INSTALLING: timedelta(minutes=40),
        N.REGISTERED: timedelta(minutes=15),
        N.JOINING: timedelta(minutes=20),
    }
    TIMEOUT_STATUS = N.TIMEOUT
    STATUS_REASON_FIELD = "reason"
    STATUS_CHANGED_AT_FIELD = "status_changed_at"
    on_timed_out = TimedOutHandler()

    run = models.ForeignKey(ReprovisionRun, on_delete=models.CASCADE, related_name="node_runs")
    cluster_node = models.ForeignKey(
        ClusterNode, on_delete=models.PROTECT, related_name="reprovisions"
    )
    status = models.CharField(max_length=20, choices=N.choices, default=N.REQUESTED, db_index=True)
    reason = models.TextField(blank=True, help_text="Why it is in its status.")
    error_code = models.CharField(
        max_length=64, blank=True, help_text="cluster_form.yml's structured error code."
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    deadline_minutes = models.PositiveIntegerField(
        help_text="From the reimage to ready (the old system's 45 minutes)."
    )
    deadline = models.DateTimeField(help_text="When the node's own reprovision times out.")
    was_member = models.BooleanField(
        default=False, help_text="A cluster member when the run started (delnode before join)."
    )
    # Registration: a one-time token (stored hashed, issued with the post-install script)
    # and the HMAC secret of this node in this run (encrypted: the portal verifies with it).
    token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    token_expires = models.DateTimeField(null=True, blank=True, editable=False)
    token_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret = EncryptedTextField(editable=False)
    registration = models.JSONField(default=dict, blank=True, editable=False)
    registered_at = models.DateTimeField(null=True, blank=True)
    ready_checks = models.PositiveSmallIntegerField(default=0)
    current_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The job acting on the node now (readiness check or join).",
    )

    class Meta(StatusModel.Meta):
        ordering = ["run", "cluster_node__node__name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "cluster_node"], name="unique_node_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_node.node.name} in run {self.run_id} ({self.status})"

    @property
    def legacy_status(self) -> str:
        return legacy_status(self.status)

    # --- deadlines ----------------------------------------------------------------------

    def status_timeout(self, status: str) -> timedelta | None:
        minutes = settings.CLUSTERS_PHASE_MINUTES.get(str(status))
        phase = timedelta(minutes=minutes) if minutes else None
        if status not in NODE_DEADLINE_PHASES:
            return phase
        left = max(self.deadline - timezone.now(), timedelta(0))
        return min(phase, left) if phase is not None else left

    def timeout_reason(self, status: str, now: datetime) -> str:
        if status in NODE_DEADLINE_PHASES and now >= self.deadline:
            overall = humane_duration(timedelta(minutes=self.deadline_minutes))
            what = "did not register" if status != N.REGISTERED else "was not ready"
            return f"{what} within the node's deadline of {overall} (in {status})"
        minutes = settings.CLUSTERS_PHASE_MINUTES.get(str(status))
        if minutes:
            return f"timed out after {humane_duration(timedelta(minutes=minutes))} in {status}"
        return f"timed out in {status}"

    def status_timed_out(self, from_status: str) -> None:
        if self.on_timed_out.handler is not None:
            self.on_timed_out.handler(self, from_status)

    # --- moves and history ----------------------------------------------------------------

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
        """Guarded move recorded in the history (who, which job) and logged."""
        won = super().move(
            to, allowed_from, reason=reason, history={"job": job, "by": by}, **fields
        )
        if won:
            logger.info(
                "cluster node %s run %s: -> %s %s",
                self.cluster_node_id,
                self.run_id,
                to,
                reason,
                extra={"object_id": self.pk},
            )
        return won

    def record_move(
        self, from_status: str, to: str, reason: str, *, job: Any = None, by: Any = None, **_: Any
    ) -> None:
        ReprovisionEvent.objects.create(
            run_id=self.run_id,
            node_run_id=self.pk,
            from_status=from_status,
            status=to,
            reason=reason[:2000],
            job=job,
            by=_who(by),
        )

    def note(self, reason: str, *, job: Any = None, by: Any = None, **fields: Any) -> None:
        """Something happened without a status change (a readiness check, a power call)."""
        NodeReprovision.objects.filter(pk=self.pk).update(
            reason=reason, updated_at=timezone.now(), **fields
        )
        ReprovisionEvent.objects.create(
            run_id=self.run_id,
            node_run_id=self.pk,
            from_status=self.status,
            status=self.status,
            reason=reason[:2000],
            job=job,
            by=_who(by),
        )
        self.refresh_from_db()
