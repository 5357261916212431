from django.db import models

from portal.nodes.choices import QuotaBackend  # noqa: F401  (re-exported)


class WorkspaceStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # recorded, waiting for its node's next create run
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


S = WorkspaceStatus

# A workspace in any of these counts against the plan's limit and holds its name and slug.
LIVE = frozenset(set(S) - {S.DELETED})
# Operations a customer may ask for, and the statuses they may start from.
OPERATIONS = {
    "start": frozenset({S.STOPPED}),
    "stop": frozenset({S.RUNNING}),
    "restart": frozenset({S.RUNNING}),
    "status": frozenset({S.RUNNING, S.STOPPED}),
    "logs": frozenset({S.RUNNING, S.STOPPED}),
    "resize": frozenset({S.RUNNING, S.STOPPED}),
}
