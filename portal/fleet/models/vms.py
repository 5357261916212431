"""A fleet VM is an inventory node with a fleet profile; tiers carry a monthly cost."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from portal.core.fields import EncryptedTextField
from portal.core.models import TimeStampedModel
from portal.core.tenancy import CustomerOwnedQuerySet
from portal.fleet.choices import FleetTier, VMActionKind


class VMQuerySet(CustomerOwnedQuerySet):
    pass


class VM(TimeStampedModel):
    """The fleet profile of a node: whose VM it is, its tier and sizes, how to re-image it.

    The VM's id is its node's id (``node`` is the primary key), so inventory, credentials,
    jobs and monitoring see the VM as the node it is, and a rebuild keeps the id. Its status
    is derived (portal/fleet/selectors.py), never stored.
    """

    customer_path = "customer"

    node = models.OneToOneField(
        "nodes.Node",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="fleet_vm",
        help_text="The inventory node (address, credential, jobs, monitoring).",
    )
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="vms")
    tier = models.CharField(max_length=20, choices=FleetTier.choices, default=FleetTier.STARTER)
    cpu_cores = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(1024)]
    )
    memory_gb = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(65536)]
    )
    disk_gb = models.PositiveIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)]
    )
    maintenance = models.BooleanField(
        default=False, help_text="In maintenance: its status says so and its alerts are held."
    )
    maintenance_reason = models.CharField(max_length=200, blank=True)
    last_action = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The latest restart, rebuild or update job of this VM.",
    )
    last_action_kind = models.CharField(max_length=10, choices=VMActionKind.choices, blank=True)
    last_action_failed = models.BooleanField(
        default=False, help_text="The latest action failed: the VM's status is 'error'."
    )
    # How a rebuild re-images it: a driver of portal/clusters/power (blank: no rebuild).
    power_driver = models.CharField(max_length=20, blank=True)
    power_address = models.CharField(max_length=255, blank=True)
    power_username = models.CharField(max_length=64, blank=True)
    power_password = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown.")
    power_options = models.JSONField(default=dict, blank=True)

    objects = VMQuerySet.as_manager()

    class Meta:
        verbose_name = "VM"
        ordering = ["node_id"]
        indexes = [models.Index(fields=["customer", "tier"], name="fleet_vm_customer_tier")]

    def __str__(self) -> str:
        return self.node.name if self.node_id else "VM"


class TierCost(TimeStampedModel):
    """What one VM of a tier costs per month (set by admins; the fleet figures' cost side)."""

    tier = models.CharField(max_length=20, choices=FleetTier.choices, unique=True)
    monthly_cost = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    offline_alert_hours = models.PositiveIntegerField(
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 365)],
        help_text="A VM of this tier silent longer than this raises a vm_offline alert.",
    )

    class Meta:
        ordering = ["tier"]

    def __str__(self) -> str:
        return f"{self.get_tier_display()}: {self.monthly_cost}/month"
