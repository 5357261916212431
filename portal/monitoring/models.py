"""Monitoring storage: one liveness row per monitored node, raw samples, 5-minute rollups.

Sizes matter here (README, "Monitoring", capacity): a sample is a narrow row of floats, and
samples and rollups point at their node without a database foreign key or a cascade, so
deleting a node never walks millions of rows in Python; its history ages out with the
retention like everyone else's.
"""

from django.db import models
from django.db.models import Q

from portal.core.status import StatusModel
from portal.monitoring.choices import WATCHED, Liveness
from portal.nodes.models import Node


class NodeLiveness(StatusModel):
    """The one row a heartbeat updates: agent token hashes, sequence, due times, last values.

    ``late_at`` = last beat + interval + MONITORING_LATE_SECONDS and ``next_due_at`` = last
    beat + interval + MONITORING_GRACE_SECONDS; the evaluator (actions.evaluate_liveness)
    moves a node whose time has passed with a guarded UPDATE. Both columns have a partial
    index over the rows that can still move, so a pass over 100k nodes reads only the due ones.

    The moves are declared here, on the shared status base (portal/core/status.py); they are
    applied in bulk (a heartbeat's UPDATE, the evaluator's guarded UPDATEs over all due
    nodes at once), not row by row, and the base's per-row deadline (``status_expires``) is
    not used: the due times are per node and set by each heartbeat.
    """

    TRANSITIONS = {
        Liveness.UNKNOWN: {Liveness.UP, Liveness.DOWN},
        Liveness.UP: {Liveness.UP, Liveness.LATE, Liveness.DOWN},
        Liveness.LATE: {Liveness.UP, Liveness.DOWN},
        Liveness.DOWN: {Liveness.UP},
    }
    STATUS_CHANGED_AT_FIELD = "status_changed_at"

    node = models.OneToOneField(
        Node, primary_key=True, on_delete=models.CASCADE, related_name="liveness"
    )
    # SHA-256 hex of the agent's bearer token; next_token_hash is a rotation on its way to
    # the node (accepted too; the first heartbeat with it, or the install job's success,
    # makes it the only one).
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    next_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    token_issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Liveness.choices, default=Liveness.UNKNOWN)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)
    interval_seconds = models.PositiveIntegerField(default=30)
    late_at = models.DateTimeField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=32, blank=True)
    uptime_seconds = models.BigIntegerField(null=True, blank=True)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    disk_percent = models.FloatField(null=True, blank=True)
    disk_used_gb = models.FloatField(null=True, blank=True)
    load1 = models.FloatField(null=True, blank=True)

    class Meta(StatusModel.Meta):
        verbose_name = "node liveness"
        verbose_name_plural = "node liveness"
        indexes = [
            *StatusModel.Meta.indexes,
            models.Index(
                fields=["next_due_at"],
                name="liveness_due_idx",
                condition=Q(status__in=sorted(WATCHED), next_due_at__isnull=False),
            ),
            models.Index(
                fields=["late_at"], name="liveness_late_idx", condition=Q(status=Liveness.UP)
            ),
        ]

    def __str__(self):
        return f"{self.node_id}: {self.status}"


class Sample(models.Model):
    """One heartbeat's values, kept MONITORING_RAW_RETENTION_HOURS (48 h)."""

    id = models.BigAutoField(primary_key=True)
    node = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    at = models.DateTimeField()
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    disk_percent = models.FloatField()
    disk_used_gb = models.FloatField()
    load1 = models.FloatField(null=True)
    gauges = models.JSONField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["node", "at"], name="sample_node_at_idx"),
            models.Index(fields=["at"], name="sample_at_idx"),  # rollup windows and pruning
        ]

    def __str__(self):
        return f"{self.node_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class Rollup(models.Model):
    """min/avg/max of a node's samples over one 5-minute bucket, kept 90 days."""

    id = models.BigAutoField(primary_key=True)
    node = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    bucket = models.DateTimeField(help_text="Start of the 5-minute bucket.")
    samples = models.PositiveIntegerField()
    cpu_min = models.FloatField()
    cpu_avg = models.FloatField()
    cpu_max = models.FloatField()
    memory_min = models.FloatField()
    memory_avg = models.FloatField()
    memory_max = models.FloatField()
    disk_min = models.FloatField()
    disk_avg = models.FloatField()
    disk_max = models.FloatField()
    disk_used_gb_max = models.FloatField()
    load1_min = models.FloatField(null=True)
    load1_avg = models.FloatField(null=True)
    load1_max = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "bucket"], name="rollup_node_bucket_uniq"),
        ]
        indexes = [models.Index(fields=["bucket"], name="rollup_bucket_idx")]

    def __str__(self):
        return f"{self.node_id} at {self.bucket:%Y-%m-%d %H:%M}"


class MonitoredNode(Node):
    """Nodes seen from monitoring (the admin's list with liveness and the agent action)."""

    class Meta:
        proxy = True
        verbose_name = "monitored node"
