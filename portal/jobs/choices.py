from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DISPATCHED = "dispatched", "Dispatched"
    RUNNING = "running", "Running"
    SUCCESSFUL = "successful", "Successful"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"
    CANCELED = "canceled", "Canceled"
    TIMEOUT = "timeout", "Timed out"
    LOST = "lost", "Lost"
    REFUSED = "refused", "Refused"


TERMINAL = frozenset(
    {
        JobStatus.SUCCESSFUL,
        JobStatus.FAILED,
        JobStatus.ERROR,
        JobStatus.CANCELED,
        JobStatus.TIMEOUT,
        JobStatus.LOST,
        JobStatus.REFUSED,
    }
)
ACTIVE = frozenset({JobStatus.PENDING, JobStatus.DISPATCHED, JobStatus.RUNNING})
