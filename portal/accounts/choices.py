from django.db import models

from portal.core.tenancy import MembershipRole

__all__ = ["BillingStatus", "InvitationStatus", "MembershipRole", "PlanTier"]


class PlanTier(models.TextChoices):
    STARTER = "starter", "Starter"
    TEAM = "team", "Team"
    ENTERPRISE = "enterprise", "Enterprise"


class BillingStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    OVERDUE = "overdue", "Overdue"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


# Defaults of the three plans, also used by the data migration that creates them.
DEFAULT_PLANS = {
    PlanTier.STARTER: {
        "workspace_limit": 2,
        "disk_quota_gb": 10,
        "cpu_limit": 1,
        "memory_limit_mb": 2048,
        "monthly_price": "19.00",
    },
    PlanTier.TEAM: {
        "workspace_limit": 10,
        "disk_quota_gb": 50,
        "cpu_limit": 2,
        "memory_limit_mb": 4096,
        "monthly_price": "99.00",
    },
    PlanTier.ENTERPRISE: {
        "workspace_limit": 50,
        "disk_quota_gb": 250,
        "cpu_limit": 4,
        "memory_limit_mb": 8192,
        "monthly_price": "499.00",
    },
}
