from django.db import models


class Liveness(models.TextChoices):
    """A node's liveness, from its agent's heartbeats (see NodeLiveness)."""

    UNKNOWN = "unknown", "Unknown"  # no heartbeat yet (or no agent)
    UP = "up", "Up"
    LATE = "late", "Late"  # the expected beat is overdue by more than MONITORING_LATE_SECONDS
    DOWN = "down", "Down"  # silent past next_due_at = last beat + interval + grace


# States the evaluator moves to DOWN once next_due_at has passed.
WATCHED = frozenset({Liveness.UNKNOWN, Liveness.UP, Liveness.LATE})
