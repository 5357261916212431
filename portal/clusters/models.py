"""Bare-metal Proxmox clusters: the cluster, its nodes, and reprovision runs with their
per-node state machine and history.

A :class:`ClusterNode` is a profile of a :class:`portal.nodes.models.Node` (one to one), so
inventory, credentials, jobs and monitoring work on it unchanged. A :class:`ReprovisionRun`
re-images some of a cluster's nodes and forms the cluster once every one of them is ready;
each node's part is a :class:`NodeReprovision` on the status base
(:class:`portal.core.status.StatusModel`): every move is guarded, has a deadline per phase
(and the node's overall deadline), and writes a :class:`ReprovisionEvent`.

The old system's ``reprovision_status`` is derived, never stored (:func:`legacy_status`):

| NodeReprovision.status                              | reprovision_status |
|-----------------------------------------------------|--------------------|
| requested, rebooting, installing, registered        | in_progress        |
| ready, joining                                      | completed          |
| clustered                                           | clustered          |
| timeout                                             | timeout            |
| error, canceled                                     | error              |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.clusters.choices import LegacyStatus, NodeStatus, RunStatus
from portal.clusters.naming import (
    CLUSTER_NAME_MAX,
    cluster_name_validator,
    normalise_mac,
    validate_mac,
)
from portal.clusters.power import DRIVER_CHOICES, PowerError, get_driver
from portal.core.fields import EncryptedTextField
from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel, humane_duration

logger = logging.getLogger(__name__)

N = NodeStatus
R = RunStatus

# A node's own reprovision: these phases count against its overall deadline.
NODE_DEADLINE_PHASES = frozenset({N.REQUESTED, N.REBOOTING, N.INSTALLING, N.REGISTERED})
# Still moving (a run with such a node is not over); READY waits for the others.
NODE_ACTIVE = frozenset({*NODE_DEADLINE_PHASES, N.JOINING})
NODE_FAILED = frozenset({N.TIMEOUT, N.ERROR})
RUN_ACTIVE = frozenset({R.REQUESTED, R.RUNNING})
LEGACY = {
    N.REQUESTED: LegacyStatus.IN_PROGRESS,
    N.REBOOTING: LegacyStatus.IN_PROGRESS,
    N.INSTALLING: LegacyStatus.IN_PROGRESS,
    N.REGISTERED: LegacyStatus.IN_PROGRESS,
    N.READY: LegacyStatus.COMPLETED,
    N.JOINING: LegacyStatus.COMPLETED,
    N.CLUSTERED: LegacyStatus.CLUSTERED,
    N.TIMEOUT: LegacyStatus.TIMEOUT,
    N.ERROR: LegacyStatus.ERROR,
    N.CANCELED: LegacyStatus.ERROR,
}


def legacy_status(status: str) -> str:
    """The old ``reprovision_status`` of a node in ``status`` (table in the module doc)."""
    return str(LEGACY[N(status)])


def _who(by: Any) -> Any:
    return by if by is not None and getattr(by, "pk", None) else None


class Cluster(TimeStampedModel):
    name = models.CharField(
        max_length=CLUSTER_NAME_MAX,
        unique=True,
        validators=[cluster_name_validator],
        help_text="Proxmox cluster name: 1-15 letters, digits or '-'.",
    )
    description = models.TextField(blank=True)
    init_node = models.ForeignKey(
        "ClusterNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where `pvecm create` runs (blank: the run's first node).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.init_node_id and self.init_node and self.init_node.cluster_id != self.pk:
            raise ValidationError({"init_node": "The init node must be a node of this cluster."})


class ClusterNode(TimeStampedModel):
    """A bare-metal Proxmox node: how to power it, what it registered."""

    node = models.OneToOneField(
        "nodes.Node",
        on_delete=models.PROTECT,
        related_name="cluster_profile",
        help_text="The inventory node (SSH address, credential, jobs, monitoring).",
    )
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.PROTECT, related_name="nodes"
    )
    mac = models.CharField(
        max_length=17,
        unique=True,
        validators=[validate_mac],
        help_text="The provisioning NIC's MAC, lower case with colons (52:54:00:12:34:56).",
    )
    hostname = models.CharField(max_length=253, blank=True, help_text="As the node registered.")
    ip = models.GenericIPAddressField(null=True, blank=True, help_text="As the node registered.")
    link0 = models.GenericIPAddressField(
        null=True, blank=True, help_text="Corosync link 0 address (`pvecm add -link0`)."
    )
    link1 = models.GenericIPAddressField(
        null=True, blank=True, help_text="Optional second corosync link."
    )
    power_driver = models.CharField(max_length=20, choices=DRIVER_CHOICES)
    bmc_address = models.CharField(
        max_length=255, blank=True, help_text="The BMC's address (IPMI, Redfish)."
    )
    bmc_username = models.CharField(max_length=64, blank=True)
    bmc_password = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown.")
    power_options = models.JSONField(
        default=dict, blank=True, help_text="Driver options (checked by the driver)."
    )
    is_member = models.BooleanField(
        default=False,
        editable=False,
        help_text="A member of its cluster since its last join (a reprovision removes it "
        "with `pvecm delnode` before it joins again).",
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    # What the old registered-nodes.json said, for nodes imported from it and never run since.
    legacy_reprovision_status = models.CharField(
        max_length=20, choices=LegacyStatus.choices, blank=True
    )
    legacy_reprovision_started = models.DateTimeField(null=True, blank=True)
    legacy_last_update = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["node__name"]

    def __str__(self) -> str:
        return f"{self.node.name} ({self.mac})"

    def clean(self) -> None:
        try:
            self.mac = normalise_mac(self.mac)
        except ValueError as exc:
            raise ValidationError({"mac": str(exc)}) from None
        if not isinstance(self.power_options, dict):
            raise ValidationError({"power_options": "Options must be a JSON object."})
        if self.power_driver:
            try:
                self.power_options = get_driver(self.power_driver).check_options(self.power_options)
            except (ValueError, PowerError) as exc:
                raise ValidationError({"power_options": str(exc)}) from None

    def save(self, *args: Any, **kwargs: Any) -> None:
        with suppress(ValueError):  # else full_clean (or the unique index) refuses it
            self.mac = normalise_mac(self.mac)
        super().save(*args, **kwargs)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def proxmox_name(self) -> str:
        """The name Proxmox knows the node by (`pvecm delnode NAME`): its short hostname."""
        return (self.hostname or self.node.name).split(".")[0]


class TimedOutHandler:
    """Late-bound: the owner's actions say what follows a timeout (apps.ready wires it),
    so models never import actions."""

    handler: Callable[[Any, str], None] | None = None


class DeadlineReasonMixin:
    """``expire`` with a reason that names the deadline that passed."""

    def timeout_reason(self, status: str, now: datetime) -> str:
        raise NotImplementedError

    def expire(self, now: datetime) -> bool:
        status = self.status  # type: ignore[attr-defined]
        reason = self.timeout_reason(status, now)
        won = self.move(  # type: ignore[attr-defined]
            self.timeout_status(status),  # type: ignore[attr-defined]
            [status],
            reason=reason,
            where=Q(status_expires__lte=now),
        )
        if won:
            logger.warning("%s %s %s", type(self).__name__, self.pk, reason)  # type: ignore[attr-defined]
            self.status_timed_out(status)  # type: ignore[attr-defined]
        return won


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


class ReprovisionEvent(models.Model):
    """A run's timeline: every move of every node (and of the run itself, node_run empty)."""

    run = models.ForeignKey(ReprovisionRun, on_delete=models.CASCADE, related_name="events")
    node_run = models.ForeignKey(
        NodeReprovision, null=True, blank=True, on_delete=models.CASCADE, related_name="history"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_status = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20)
    reason = models.TextField(blank=True)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        who = f"node run {self.node_run_id}" if self.node_run_id else "run"
        return f"{self.run_id} {who}: {self.from_status} → {self.status}"


class RegistrationNonce(models.Model):
    """Nonces a node-run's signed registrations used: a nonce seen is a replay."""

    node_run = models.ForeignKey(NodeReprovision, on_delete=models.CASCADE, related_name="nonces")
    nonce = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node_run", "nonce"], name="unique_registration_nonce"),
        ]

    def __str__(self) -> str:
        return f"{self.node_run_id}: {self.nonce}"
