"""The source fleet API's bodies: VMs, customers, status changes and metric points, with the
source's field names (``id``, ``hostname``, ``ip_address``, ``customer_id``, …)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.accounts.choices import BillingStatus
from portal.core.api.fields import LowercaseEmailField, StrictCharField
from portal.core.api.filters import MAX_ID
from portal.core.api.writable import IGNORED_FIELDS, RefuseUnwritableFieldsMixin
from portal.fleet import selectors
from portal.fleet.choices import FleetTier, VMActionKind, VMStatus


class VMStatusField(serializers.ChoiceField):
    """A VM's derived status (portal.fleet.selectors)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=VMStatus.choices, source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        return selectors.vm_status(value).value


class VMSerializer(serializers.Serializer):
    """A VM as the source API showed it, plus the portal's maintenance and last action."""

    id = serializers.IntegerField(source="node_id", read_only=True, help_text="The vm_id.")
    hostname = serializers.CharField(source="node.name", read_only=True)
    ip_address = serializers.CharField(source="node.address", read_only=True)
    customer_id = serializers.IntegerField(read_only=True)
    tier = serializers.ChoiceField(choices=FleetTier.choices, read_only=True)
    status = VMStatusField(
        help_text="maintenance when flagged, error when the last action failed, else online "
        "or offline from the VM's heartbeats."
    )
    created_at = serializers.DateTimeField(read_only=True)
    last_heartbeat = serializers.SerializerMethodField(
        help_text="When the VM's last heartbeat arrived (null: never)."
    )
    cpu_cores = serializers.IntegerField(read_only=True)
    memory_gb = serializers.IntegerField(read_only=True)
    disk_gb = serializers.IntegerField(read_only=True)
    version = serializers.SerializerMethodField(
        help_text="The product version the VM's own heartbeat last reported (null: none)."
    )
    maintenance = serializers.BooleanField(read_only=True)
    maintenance_reason = serializers.CharField(read_only=True)
    last_action = serializers.IntegerField(
        source="last_action_id",
        read_only=True,
        allow_null=True,
        help_text="The latest restart, rebuild or update job (GET /api/jobs/{id}/).",
    )
    last_action_kind = serializers.ChoiceField(
        choices=VMActionKind.choices, read_only=True, allow_blank=True
    )
    last_action_failed = serializers.BooleanField(read_only=True)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_heartbeat(self, vm) -> str | None:
        value = selectors.vm_last_heartbeat(vm)
        return serializers.DateTimeField().to_representation(value) if value else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_version(self, vm) -> str | None:
        return selectors.vm_version(vm) or None


WRITABLE = frozenset(
    {"hostname", "ip_address", "customer_id", "tier", "cpu_cores", "memory_gb", "disk_gb"}
)


class VMCreateSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """POST /api/vms: the source API's body; credential and ssh_user are the portal's (how it
    logs in to the VM; default: the credential named 'fleet', as root)."""

    # The VM's fields that are not the body's (status, version, …): a 400 naming each.
    refused_fields = frozenset(VMSerializer._declared_fields) - IGNORED_FIELDS - WRITABLE

    hostname = StrictCharField(max_length=63, help_text="Becomes the node's name (lower-case).")
    ip_address = StrictCharField(max_length=45, help_text="IPv4 or IPv6; unique among VMs.")
    customer_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    tier = serializers.ChoiceField(
        choices=FleetTier.choices, required=False, help_text="Default: the customer's tier."
    )
    cpu_cores = serializers.IntegerField(min_value=1, max_value=1024, required=False)
    memory_gb = serializers.IntegerField(min_value=1, max_value=65536, required=False)
    disk_gb = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    credential = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="Id of the SSH credential (default: the one named 'fleet').",
    )
    ssh_user = StrictCharField(max_length=64, required=False, help_text="Default: root.")


class VMStatusChangeSerializer(serializers.Serializer):
    """PUT /api/vms/{vm_id}/status: maintenance (flag it) or online (end maintenance, clear
    an error); offline and error come from heartbeats and actions."""

    status = serializers.ChoiceField(choices=VMStatus.choices)
    reason = StrictCharField(
        max_length=200, required=False, allow_blank=True, help_text="Why (maintenance)."
    )


class FleetCustomerSerializer(serializers.Serializer):
    """A customer as the source API showed it (tier: the plan's, team called pro)."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)
    company = serializers.CharField(read_only=True)
    tier = serializers.ChoiceField(choices=FleetTier.choices, source="fleet_tier", read_only=True)
    billing_status = serializers.ChoiceField(choices=BillingStatus.choices, read_only=True)
    monthly_fee = serializers.DecimalField(
        max_digits=10, decimal_places=2, coerce_to_string=False, read_only=True
    )
    created_at = serializers.DateTimeField(read_only=True)
    vm_count = serializers.IntegerField(read_only=True, required=False)


class FleetCustomerCreateSerializer(RefuseUnwritableFieldsMixin, serializers.Serializer):
    """POST /api/customers (admins): the source API's body; the tier picks the plan."""

    refused_fields = frozenset({"vm_count"})

    name = StrictCharField(max_length=200)
    email = LowercaseEmailField(max_length=254)
    company = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    tier = serializers.ChoiceField(choices=FleetTier.choices, default=FleetTier.STARTER)
    billing_status = serializers.ChoiceField(choices=BillingStatus.choices, required=False)
    monthly_fee = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False
    )


class VMMetricPointSerializer(serializers.Serializer):
    vm_id = serializers.IntegerField()
    timestamp = serializers.DateTimeField(help_text="Sample time, or the 5-minute bucket's start.")
    cpu_percent = serializers.FloatField(help_text="Raw value, or the bucket's average.")
    memory_percent = serializers.FloatField()
    disk_percent = serializers.FloatField()
    disk_used_gb = serializers.FloatField(help_text="GiB used (a bucket's maximum).")
