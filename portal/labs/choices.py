from django.db import models


class SessionStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # waiting for the lab server (or not yet started)
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    EXPIRING = "expiring", "Expiring"  # cleanup running
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Failed"
    CLEANUP_FAILED = "cleanup_failed", "Cleanup failed"


# A user holds at most one of these per lab (unless the lab allows more).
LIVE = frozenset({SessionStatus.REQUESTED, SessionStatus.PROVISIONING, SessionStatus.ACTIVE})
# The lab server may hold the session's user and namespace: cleanup must run.
ON_SERVER = frozenset(
    {
        SessionStatus.ACTIVE,
        SessionStatus.FAILED,
        SessionStatus.CLEANUP_FAILED,
        SessionStatus.PROVISIONING,
    }
)
