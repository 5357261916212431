from django.db import models


class Liveness(models.TextChoices):
    """A node's liveness, from its agent's heartbeats (see NodeLiveness)."""

    UNKNOWN = "unknown", "Unknown"  # no heartbeat yet (or no agent)
    UP = "up", "Up"
    LATE = "late", "Late"  # the expected beat is overdue by more than MONITORING_LATE_SECONDS
    DOWN = "down", "Down"  # silent past next_due_at = last beat + interval + grace


# States the evaluator moves to DOWN once next_due_at has passed.
WATCHED = frozenset({Liveness.UNKNOWN, Liveness.UP, Liveness.LATE})


class Severity(models.TextChoices):
    HIGH = "high", "High"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class AlertType(models.TextChoices):
    """The source fleet API's alert types, plus the ones the rules raise."""

    VM_OFFLINE = "vm_offline", "Node offline"
    DISK_SPACE = "disk_space", "Disk space"
    MEMORY = "memory", "Memory"
    CPU = "cpu", "CPU"
    LOAD = "load", "Load"
    API_QUOTA = "api_quota", "API quota"
    UNUSUAL_ACTIVITY = "unusual_activity", "Unusual activity"
    FLAPPING = "flapping", "Flapping"
    OTHER = "other", "Other"


class RuleKind(models.TextChoices):
    THRESHOLD = "threshold", "Threshold"
    BASELINE = "baseline", "Baseline (unusual for this hour of the week)"


class Comparison(models.TextChoices):
    GE = ">=", "≥"
    GT = ">", ">"
    LE = "<=", "≤"
    LT = "<", "<"


# What a rule can watch besides a heartbeat's extra gauges; DOWN is 1 while the node's
# liveness is down, else 0 (so "down for 5 min" is ">= 1 for 300 s").
DOWN = "down"
BUILTIN_METRICS = ("cpu_percent", "memory_percent", "disk_percent", "load1", DOWN)


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class NotificationEvent(models.TextChoices):
    FIRED = "fired", "Fired"
    REPEAT = "repeat", "Still open"
    RESOLVED = "resolved", "Resolved"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
