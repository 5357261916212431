"""Monitoring storage: one liveness row per monitored node, raw samples, 5-minute rollups.

Sizes matter here (README, "Monitoring", capacity): a sample is a narrow row of floats, and
samples and rollups point at their node without a database foreign key or a cascade, so
deleting a node never walks millions of rows in Python; its history ages out with the
retention like everyone else's.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.accounts.models import Customer
from portal.core.fields import EncryptedTextField
from portal.core.status import StatusModel
from portal.monitoring.choices import (
    WATCHED,
    AlertType,
    ChannelKind,
    Comparison,
    Liveness,
    NotificationEvent,
    NotificationStatus,
    RuleKind,
    Severity,
)
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Node, NodeGroup


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
    # The product version the node runs, as its heartbeat last reported it (a fleet VM's
    # `version`; a beat without the field leaves it as it was).
    product_version = models.CharField(max_length=64, blank=True)
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
    gauges = models.JSONField(
        null=True, help_text="The average of each extra gauge the bucket's samples carried."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "bucket"], name="rollup_node_bucket_uniq"),
        ]
        indexes = [models.Index(fields=["bucket"], name="rollup_bucket_idx")]

    def __str__(self):
        return f"{self.node_id} at {self.bucket:%Y-%m-%d %H:%M}"


class Baseline(models.Model):
    """A node's usual value of one metric at one hour of the week (0 = Monday 00:00 UTC),
    from the rollups of that hour in the last MONITORING_BASELINE_WEEKS weeks: the mean of
    their averages and a spread (their standard deviation, floored; see
    portal.monitoring.baselines). Baseline rules compare a node's value with it."""

    id = models.BigAutoField(primary_key=True)
    node = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    metric = models.CharField(max_length=64)
    hour_of_week = models.PositiveSmallIntegerField()
    mean = models.FloatField()
    deviation = models.FloatField(help_text="The standard deviation of the rollups' averages.")
    buckets = models.PositiveIntegerField(help_text="Rollups it was computed from.")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour_of_week", "metric", "node"], name="baseline_hour_metric_node_uniq"
            ),
        ]

    def __str__(self):
        return f"{self.node_id} {self.metric} at hour {self.hour_of_week}"


class MonitoredNode(Node):
    """Nodes seen from monitoring (the admin's list with liveness and the agent action)."""

    class Meta:
        proxy = True
        verbose_name = "monitored node"


class AlertRule(models.Model):
    """When a node's metric raises an alert: fires once ``metric comparison threshold`` has
    held for ``for_seconds``, resolves once the clear condition (the same comparison against
    ``clear_threshold``, negated: disk fires >= 80, clears < 75) has held for
    ``keep_firing_for_seconds``. Scope: all nodes, or those of a group and/or a purpose."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(
        max_length=10,
        choices=RuleKind.choices,
        default=RuleKind.THRESHOLD,
        help_text="Threshold: the metric's value is compared. Baseline: how many spreads the "
        "value is from the node's usual value for this hour of the week (unusual activity); "
        "thresholds are then in spreads (e.g. >= 4, clears < 2; <= -4 for a drop).",
    )
    metric = models.CharField(
        max_length=64,
        help_text="cpu_percent, memory_percent, disk_percent, load1, down (1 while the node "
        "is down), or the name of an extra gauge the heartbeats carry.",
    )
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default=Comparison.GE)
    threshold = models.FloatField(help_text="Fires when the value compares so to this.")
    clear_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Clears when the value no longer compares so to this (default: threshold). "
        "On the safe side of the threshold: at most it for >=/>, at least it for <=/<.",
    )
    for_seconds = models.PositiveIntegerField(
        default=0, help_text="How long the condition must hold before the alert fires."
    )
    keep_firing_for_seconds = models.PositiveIntegerField(
        default=0, help_text="How long the clear condition must hold before the alert resolves."
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    alert_type = models.CharField(max_length=20, choices=AlertType.choices, default=AlertType.OTHER)
    group = models.ForeignKey(
        NodeGroup,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only the nodes of this group (empty: any).",
    )
    purpose = models.CharField(
        max_length=20,
        choices=NodePurpose.choices,
        blank=True,
        help_text="Only the nodes of this purpose (empty: any).",
    )
    scope = models.CharField(
        max_length=64,
        blank=True,
        help_text="Only the nodes of this scope, defined by an app above monitoring (the "
        "fleet's VMs of a tier, or every node but the fleet's VMs); empty: any.",
    )
    min_spread = models.FloatField(
        default=1.0,
        help_text="Baseline rules: the smallest spread assumed, in the metric's unit (also "
        "at least 10 % of the usual value), so a flat metric does not fire on noise.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def clear_at(self) -> float:
        return self.threshold if self.clear_threshold is None else self.clear_threshold

    def clean(self):
        from portal.monitoring.rules import rule_errors

        errors = rule_errors(
            self.metric,
            self.comparison,
            self.threshold,
            self.clear_threshold,
            kind=self.kind,
            min_spread=self.min_spread,
        )
        from portal.monitoring import scopes

        if self.scope and not scopes.known(self.scope):
            errors["scope"] = f"One of {', '.join(key for key, _ in scopes.choices())}, or empty."
        if errors:
            raise ValidationError(errors)


class Alert(models.Model):
    """An alert as in the source fleet API (id, vm_id, customer_id, type, severity, message,
    created_at, resolved), raised and resolved by the rules' evaluator or by hand. At most
    one open alert per (rule, node), and per (rule, group) for a down group's alert: partial
    unique indexes, so competing evaluators cannot both raise one (manual alerts have no rule
    and are not limited)."""

    id = models.BigAutoField(primary_key=True)
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    group = models.ForeignKey(
        NodeGroup,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alerts",
        help_text="A whole group (site) is down: the alert that stands for its nodes' down "
        "alerts (no node).",
    )
    type = models.CharField(max_length=20, choices=AlertType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    fired_value = models.FloatField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "node"],
                condition=Q(resolved=False),
                name="alert_one_open_per_rule_node",
            ),
            models.UniqueConstraint(
                fields=["rule", "group"],
                condition=Q(resolved=False, node__isnull=True, group__isnull=False),
                name="alert_one_open_per_rule_group",
            ),
        ]
        indexes = [
            models.Index(fields=["severity"], name="alert_open_idx", condition=Q(resolved=False)),
            models.Index(fields=["created_at"], name="alert_created_idx"),
        ]

    def __str__(self):
        return f"{self.type} ({self.severity}) #{self.pk}"

    @property
    def group_of(self) -> int | None:
        """The node group the alert is about: its node's, or its own for a group alert."""
        return self.node.group_id if self.node is not None else self.group_id


class AlertState(models.Model):
    """The evaluator's memory of one (rule, node) that is not idle: since when its condition
    holds (``pending_since``), whether it fires, since when its clear condition holds
    (``clearing_since``), its recent fire/clear flips (epoch seconds, within the flapping
    window) and whether it is flapping. A pair whose condition is false and that has no
    history has no row, so a pass over a healthy fleet writes nothing."""

    id = models.BigAutoField(primary_key=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    node = models.ForeignKey(
        Node, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    pending_since = models.DateTimeField(null=True)
    clearing_since = models.DateTimeField(null=True)
    firing = models.BooleanField(default=False)
    flapping = models.BooleanField(default=False)
    flips = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "rule"], name="alertstate_node_rule_uniq"),
        ]

    def __str__(self):
        return f"rule {self.rule_id} node {self.node_id}"


class NotificationChannel(models.Model):
    """Where alert notifications go (README, "Monitoring", notifications): an email to a
    list of addresses or a signed webhook POST. Scoped to the alerts of one node group
    and/or one customer (empty: all alerts)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    emails = models.JSONField(
        default=list, blank=True, help_text='Email: the addresses, a JSON list ["a@example.com"].'
    )
    url = models.URLField(max_length=500, blank=True, help_text="Webhook: the URL to POST to.")
    secret = EncryptedTextField(
        blank=True, help_text="Webhook: the HMAC-SHA256 key (stored encrypted)."
    )
    group = models.ForeignKey(
        NodeGroup,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only alerts of this group's nodes (empty: any).",
    )
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only alerts of this customer (empty: any).",
    )
    repeat_minutes = models.PositiveIntegerField(
        default=0, help_text="Notify a still-open alert again every this many minutes (0: never)."
    )
    max_per_alert = models.PositiveIntegerField(
        default=10, help_text="At most this many notifications per alert (0: no limit)."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        from portal.monitoring.notify_channels import channel_errors

        errors = channel_errors(self.kind, self.emails, self.url)
        if errors:
            raise ValidationError(errors)


class Notification(models.Model):
    """The outbox: one row per (channel, alert, event), written in the transaction that
    raised or resolved the alert; the delivery task sends it and marks it sent or, after
    MONITORING_NOTIFY_MAX_ATTEMPTS, failed. ``number`` tells a repeat from the others (1 for
    fired, 2, 3, … for repeats, 0 for resolved), so writing the same row twice is a no-op."""

    id = models.BigAutoField(primary_key=True)
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="notifications"
    )
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=10, choices=NotificationEvent.choices)
    number = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    response_status = models.IntegerField(
        null=True, blank=True, help_text="Webhook: the HTTP status; email: the SMTP reply code."
    )
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "alert", "event", "number"], name="notification_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self):
        return f"{self.event} of alert {self.alert_id} to {self.channel_id}: {self.status}"
