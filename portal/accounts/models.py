from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from portal.accounts.choices import BillingStatus, InvitationStatus, MembershipRole, PlanTier
from portal.core.models import TimeStampedModel
from portal.core.tenancy import CustomerOwnedQuerySet


class Plan(TimeStampedModel):
    tier = models.CharField(max_length=20, choices=PlanTier.choices, unique=True)
    name = models.CharField(max_length=100)
    workspace_limit = models.PositiveIntegerField(
        help_text="How many workspaces a customer on this plan may have at once."
    )
    disk_quota_gb = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text="Disk quota per workspace, in GB."
    )
    cpu_limit = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="CPU cores per workspace (systemd CPUQuota).",
    )
    memory_limit_mb = models.PositiveIntegerField(
        validators=[MinValueValidator(128)], help_text="Memory per workspace, in MB (MemoryMax)."
    )
    monthly_price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["monthly_price", "tier"]

    def __str__(self):
        return self.name


class Customer(TimeStampedModel):
    customer_path = ""  # see portal.core.tenancy

    name = models.CharField(max_length=200)
    email = models.EmailField(
        unique=True,
        error_messages={
            "unique": "A customer with this email already exists.",
        },
    )
    company = models.CharField(max_length=200, blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="customers")
    billing_status = models.CharField(
        max_length=20, choices=BillingStatus.choices, default=BillingStatus.ACTIVE, db_index=True
    )
    monthly_fee = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    members: "models.ManyToManyField[Any, Any]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="customers"
    )

    objects = CustomerOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        # Before validate_unique, so "A@x.com" and "a@x.com" are seen as the same customer.
        self.email = (self.email or "").strip().lower()

    def save(self, *args, **kwargs):
        # Email uniqueness is case-insensitive in practice: store it lower-cased.
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class Membership(TimeStampedModel):
    customer_path = "customer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(
        max_length=20, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )

    objects = CustomerOwnedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "customer"], name="unique_membership"),
        ]
        ordering = ["customer", "user"]

    def __str__(self):
        return f"{self.user} ({self.role}) @ {self.customer}"


class InvitationQuerySet(CustomerOwnedQuerySet):
    def live(self, now=None):
        """Pending and not yet expired: the only invitations that can be accepted."""
        return self.filter(status=InvitationStatus.PENDING, expires_at__gt=now or timezone.now())


class Invitation(TimeStampedModel):
    """An owner's or admin's invitation of an email address to a customer.

    Only the SHA-256 of the token is stored; the token itself is in the email sent.
    A pending invitation past ``expires_at`` counts as expired (``current_status``); it is
    marked so when someone tries it.
    """

    customer_path = "customer"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(
        max_length=20, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(
        max_length=20,
        choices=InvitationStatus.choices,
        default=InvitationStatus.PENDING,
        db_index=True,
    )
    expires_at = models.DateTimeField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "email"])]

    def __str__(self):
        return f"{self.email} → {self.customer} ({self.role}, {self.current_status})"

    @property
    def current_status(self) -> str:
        if self.status == InvitationStatus.PENDING and self.expires_at <= timezone.now():
            return InvitationStatus.EXPIRED
        return self.status
