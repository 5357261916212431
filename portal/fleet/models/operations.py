"""A restart or rebuild of one VM, step by step, until its agent's heartbeat is back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel
from portal.fleet.choices import OperationStatus as O
from portal.fleet.choices import VMActionKind

ACTIVE_OPERATION = [O.REIMAGING, O.BOOTING, O.RUNNING, O.INSTALLING_AGENT, O.AWAITING_HEARTBEAT]


class TimedOutHandler:
    """Late-bound: the fleet's actions say what follows a timeout (apps.ready wires it), so
    models never import actions."""

    handler: Callable[[Any, str], None] | None = None


class VMOperation(StatusModel, TimeStampedModel):
    """One restart (running -> awaiting_heartbeat) or rebuild (reimaging -> booting ->
    running -> installing_agent -> awaiting_heartbeat) of a VM. At most one is active per VM
    (a partial unique index); each waiting step has a deadline the status sweep enforces."""

    customer_path = "vm__customer"

    TRANSITIONS: ClassVar = {
        O.REIMAGING: {O.BOOTING, O.FAILED},
        O.BOOTING: {O.RUNNING, O.FAILED},
        O.RUNNING: {O.INSTALLING_AGENT, O.AWAITING_HEARTBEAT, O.FAILED},
        O.INSTALLING_AGENT: {O.INSTALLING_AGENT, O.AWAITING_HEARTBEAT, O.FAILED},
        O.AWAITING_HEARTBEAT: {O.SUCCEEDED, O.FAILED},
    }
    TERMINAL: ClassVar = frozenset({O.SUCCEEDED, O.FAILED})
    TIMEOUT_STATUS: ClassVar = O.FAILED
    STATUS_REASON_FIELD: ClassVar = "reason"
    STATUS_CHANGED_AT_FIELD: ClassVar = "status_changed_at"
    on_timed_out = TimedOutHandler()

    vm = models.ForeignKey("fleet.VM", on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=10, choices=VMActionKind.choices)
    status = models.CharField(max_length=20, choices=O.choices, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="What it does now, or why it failed.")
    job = models.ForeignKey(
        "jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+", help_text="Its job."
    )
    agent_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Rebuild: the job that installed the monitoring agent again.",
    )
    booted_at = models.DateTimeField(
        null=True, blank=True, help_text="The new boot, as the first heartbeat after it shows."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(StatusModel.Meta):
        ordering = ["-created_at", "-id"]
        verbose_name = "VM operation"
        constraints = [
            models.UniqueConstraint(
                fields=["vm"],
                condition=Q(status__in=ACTIVE_OPERATION),
                name="fleet_one_active_operation_per_vm",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.vm} ({self.status})"

    def status_timeout(self, status: str) -> timedelta | None:
        seconds: int | None = {
            O.REIMAGING.value: settings.FLEET_REIMAGE_TIMEOUT,
            O.BOOTING.value: settings.FLEET_BOOT_TIMEOUT,
            O.AWAITING_HEARTBEAT.value: settings.FLEET_HEARTBEAT_TIMEOUT,
        }.get(status)
        return timedelta(seconds=seconds) if seconds else None

    def status_timed_out(self, from_status: str) -> None:
        if self.on_timed_out.handler is not None:
            self.on_timed_out.handler(self, from_status)
