"""Job and JobEvent: the record of every Ansible run.

Status changes are model methods over :meth:`StatusModel.move` (portal/core/status.py): a
guarded ``UPDATE … WHERE status IN (…)`` so two workers (or a worker and the reaper) can never
both win a transition, checked against ``Job.TRANSITIONS``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from portal.core.fields import EncryptedTextField
from portal.core.status import StatusModel
from portal.core.tenancy import CustomerOwnedQuerySet
from portal.jobs.choices import ACTIVE, TERMINAL, JobStatus

if TYPE_CHECKING:
    from portal.core.tenancy import AnyUser
    from portal.nodes.models import Node

S = JobStatus


class JobQuerySet(CustomerOwnedQuerySet):
    def visible_to(self, user: AnyUser) -> Self:
        # Admins and operators see every job; customers only their own customers' jobs.
        from portal.core.tenancy import is_operator

        if is_operator(user):
            return self
        return super().visible_to(user)

    def active(self) -> Self:
        return self.filter(status__in=ACTIVE)


class Job(StatusModel):
    customer_path = "customer"

    TRANSITIONS = {  # from -> the statuses it may move to
        S.PENDING: {S.DISPATCHED, S.RUNNING, S.CANCELED, S.REFUSED},
        S.DISPATCHED: {S.RUNNING, S.CANCELED, S.REFUSED},
        S.RUNNING: {S.SUCCESSFUL, S.FAILED, S.ERROR, S.CANCELED, S.TIMEOUT, S.LOST, S.REFUSED},
    }
    TERMINAL = TERMINAL
    STATUS_REASON_FIELD = "reason"
    REFRESH_AFTER_MOVE = False  # the worker's hot path: no SELECT after each move

    playbook = models.CharField(max_length=200, help_text="Path under playbooks/.")
    limit = models.CharField(max_length=1000, blank=True)
    nodes = models.ManyToManyField("nodes.Node", related_name="jobs", blank=True)
    extra_vars = models.JSONField(default=dict, blank=True, help_text="Non-secret variables.")
    secret_vars = EncryptedTextField(blank=True, editable=False)
    sensitive_names = models.JSONField(default=list, blank=True, editable=False)
    check_mode = models.BooleanField(default=False)

    action = models.CharField(max_length=100)  # indexed in Meta (no LIKE index beside it)
    # Indexed with target_id (Meta): the lookups by target read that index; one on the type
    # alone would only be one more index every INSERT writes.
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    target_id = models.CharField(max_length=64, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )

    queue = models.CharField(max_length=100)
    # Indexed with created_at (Meta), which serves every lookup by status; an index of its
    # own (and Django's LIKE index beside it) were two more indexes each status move rewrote.
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    rc = models.IntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why the job ended as it did.")
    timeout = models.PositiveIntegerField(help_text="Seconds before the run is ended.")
    idle_timeout = models.PositiveIntegerField(help_text="Seconds without output before ending.")

    created_at = models.DateTimeField(default=timezone.now)  # indexed with id, see Meta
    not_before = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)

    host_summary = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    event_count = models.PositiveIntegerField(default=0)
    event_lag_p95_ms = models.FloatField(
        null=True, blank=True, help_text="95th percentile of event created -> stored, in ms."
    )

    signature = models.CharField(max_length=200, blank=True, editable=False)
    attempt = models.PositiveSmallIntegerField(default=1)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )

    objects = JobQuerySet.as_manager()
    # Set by jobs.actions.launch on the Job it returns (the nodes it chose), for the API's
    # answer; an annotation only: no attribute on other instances.
    launched_nodes: list[Node]

    class Meta(StatusModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            *StatusModel.Meta.indexes,
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["action"], name="jobs_job_action_cd934825"),  # the old name
            # The lists' order (-created_at, -id): the API's cursor and the admin's first
            # page read an index range instead of sorting the history.
            models.Index(fields=["created_at", "id"], name="jobs_job_created_id"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.playbook} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    def secrets(self) -> dict[str, Any]:
        return json.loads(self.secret_vars) if self.secret_vars else {}

    # --- transitions (guarded moves, see TRANSITIONS) ---------------------------------

    def mark_dispatched(self) -> bool:
        """After the publish, never before. Not durable: a mark lost in a database crash
        leaves the job pending with its message out, and the sweep's second message is
        dropped by the claim's guard; the same as a publish whose mark failed."""
        return self.move(
            JobStatus.DISPATCHED,
            [JobStatus.PENDING],
            dispatched_at=timezone.now(),
            durable=False,
        )

    def claim(self, worker: str) -> bool:
        """Only one worker ever runs a job, however often its message is delivered."""
        now = timezone.now()
        return self.move(
            JobStatus.RUNNING,
            [JobStatus.PENDING, JobStatus.DISPATCHED],
            worker=worker,
            started_at=now,
            heartbeat_at=now,
        )

    def finish(
        self,
        status: str,
        *,
        rc: int | None = None,
        reason: str = "",
        host_summary: dict[str, dict[str, int]] | None = None,
        event_count: int | None = None,
        event_lag_p95_ms: float | None = None,
    ) -> bool:
        assert status in TERMINAL, status
        fields: dict[str, Any] = {
            "rc": rc,
            "finished_at": timezone.now(),
            "event_lag_p95_ms": event_lag_p95_ms,
        }
        if host_summary is not None:
            fields["host_summary"] = host_summary
        if event_count is not None:
            fields["event_count"] = event_count
        return self._end(status, [JobStatus.RUNNING], reason=reason, **fields)

    def cancel_before_start(self, reason: str) -> bool:
        return self._end(
            JobStatus.CANCELED,
            [JobStatus.PENDING, JobStatus.DISPATCHED],
            reason=reason,
            finished_at=timezone.now(),
            cancel_requested=True,
        )

    def refuse(self, reason: str) -> bool:
        return self._end(JobStatus.REFUSED, ACTIVE, reason=reason, finished_at=timezone.now())

    def mark_lost(self, stale_before: datetime) -> bool:
        """Running, but its worker stopped beating before ``stale_before``."""
        lost = self._end(
            JobStatus.LOST,
            [JobStatus.RUNNING],
            where=Q(heartbeat_at__lt=stale_before),
            reason=f"worker {self.worker or '?'} stopped reporting (killed or lost)",
            finished_at=timezone.now(),
        )
        if lost:
            self.refresh_from_db()  # what the worker wrote last, for the owner's handler
        return lost

    def _end(self, to: str, allowed_from: Any, **kwargs: Any) -> bool:
        """A terminal move and its count in the tally (/metrics), in one transaction: the
        tally never counts a move that did not happen, nor misses one that did. Only the
        terminal moves pay for it; dispatch and claim stay one UPDATE."""
        from portal.jobs import tally

        with transaction.atomic(savepoint=False):
            won = self.move(to, allowed_from, **kwargs)
            if won:
                if self.started_at is None and JobStatus.RUNNING in allowed_from:
                    # Claimed through another instance: the start time is in the row only.
                    self.started_at = (
                        type(self)
                        ._base_manager.filter(pk=self.pk)
                        .values_list("started_at", flat=True)
                        .get()
                    )
                tally.count_end(self, JobTally)
        return won


class JobTally(models.Model):
    """Ended jobs counted per status, playbook and duration bucket, kept up to date by each
    terminal move (``Job._end``), so /metrics reads a few rows instead of the history, and
    its counts survive the retention that deletes old jobs (portal/jobs/tally.py)."""

    status = models.CharField(max_length=20, choices=JobStatus.choices)
    playbook = models.CharField(max_length=200)
    # Upper bound of the job's duration bucket in seconds (tally.DURATION_BUCKETS),
    # tally.OVER for longer runs, tally.NOT_RUN for jobs that never started.
    le_seconds = models.IntegerField()
    count = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0, help_text="Sum of the counted jobs' run times.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["status", "playbook", "le_seconds"], name="unique_job_tally"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.playbook} le {self.le_seconds}: {self.count}"


class JobEvent(models.Model):
    """One ansible-runner event, stored in batches by the runner's event sink."""

    # No index of its own: unique_job_event_counter leads with job and serves every lookup.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events", db_index=False)
    counter = models.PositiveIntegerField()
    event = models.CharField(max_length=100)
    uuid = models.CharField(max_length=64, blank=True)
    parent_uuid = models.CharField(max_length=64, blank=True)
    host = models.CharField(max_length=255, blank=True)
    task = models.CharField(max_length=1024, blank=True)
    play = models.CharField(max_length=1024, blank=True)
    role = models.CharField(max_length=1024, blank=True)
    changed = models.BooleanField(default=False)
    failed = models.BooleanField(default=False)
    stdout = models.TextField(blank=True)
    start_line = models.PositiveIntegerField(default=0)
    end_line = models.PositiveIntegerField(default=0)
    created = models.DateTimeField()
    event_data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "counter"]
        constraints = [
            models.UniqueConstraint(fields=["job", "counter"], name="unique_job_event_counter"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.counter} {self.event}"
