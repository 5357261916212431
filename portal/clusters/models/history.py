"""A run's timeline (every move) and the nonces its registrations used."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ReprovisionEvent(models.Model):
    """A run's timeline: every move of every node (and of the run itself, node_run empty)."""

    run = models.ForeignKey(
        "clusters.ReprovisionRun", on_delete=models.CASCADE, related_name="events"
    )
    node_run = models.ForeignKey(
        "clusters.NodeReprovision",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="history",
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

    node_run = models.ForeignKey(
        "clusters.NodeReprovision", on_delete=models.CASCADE, related_name="nonces"
    )
    nonce = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node_run", "nonce"], name="unique_registration_nonce"),
        ]

    def __str__(self) -> str:
        return f"{self.node_run_id}: {self.nonce}"
