"""Writes of the source fleet API: a VM created (its node and fleet profile in one action),
a VM's status set by hand (maintenance on or off), a customer created with a source tier.

Checks first (4xx naming the source API's field), then the rows, in one transaction.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from portal.accounts import actions as accounts
from portal.accounts.models import Customer, Plan
from portal.core.errors import PortalError
from portal.fleet.choices import FleetTier, VMStatus
from portal.fleet.models import VM
from portal.fleet.selectors import FLEET_TIER_TO_PLAN, fleet_tier
from portal.nodes import actions as nodes
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Credential, Node

# The SSH credential of a VM created without one: a credential of this name, made once by
# an admin (the source API's POST /api/vms knows no credentials).
DEFAULT_CREDENTIAL = "fleet"
HOSTNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")  # a node's name (nodes.models)
# Node fields as the source API names them, for errors the node's own validation raises.
SOURCE_NAMES = {"name": "hostname", "address": "ip_address", "credential": "credential"}
# Statuses that heartbeats and actions decide; a client may not set them.
DERIVED = {
    VMStatus.OFFLINE: "offline comes from the VM's heartbeats (none within its due time)",
    VMStatus.ERROR: "error comes from a failed restart, rebuild or update",
}


# --- creating a VM -----------------------------------------------------------------------------


def normalise_hostname(hostname: str) -> str:
    return hostname.strip().lower()


def check_hostname(hostname: str) -> str:
    name = normalise_hostname(hostname)
    if not HOSTNAME.match(name):
        raise PortalError(
            "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            field="hostname",
        )
    if Node.objects.filter(name=name).exists():
        raise PortalError(
            f"A node or VM named {name} already exists.", field="hostname", code="unique"
        )
    return name


def canonical_address(ip_address: str) -> str:
    try:
        return ipaddress.ip_address(ip_address.strip()).compressed
    except ValueError:
        raise PortalError("Not a valid IPv4 or IPv6 address.", field="ip_address") from None


def check_address_free(address: str) -> None:
    """400 if a fleet VM has ``address`` (canonical) already."""
    if VM.objects.filter(node__address=address).exists():
        raise PortalError(
            f"Another VM has the address {address}.", field="ip_address", code="unique"
        )


def check_credential(credential_id: int | None) -> Credential:
    if credential_id is not None:
        found = Credential.objects.filter(pk=credential_id).first()
        if found is None:
            raise PortalError(f"No credential {credential_id}.", field="credential")
        return found
    found = Credential.objects.filter(name=DEFAULT_CREDENTIAL).first()
    if found is None:
        raise PortalError(
            f"Give the id of the SSH credential the portal logs in with, or create the "
            f"default credential named '{DEFAULT_CREDENTIAL}'.",
            field="credential",
        )
    return found


def check_customer(customer_id: int) -> Customer:
    customer = Customer.objects.select_related("plan").filter(pk=customer_id).first()
    if customer is None:
        raise PortalError(f"No customer {customer_id}.", field="customer_id")
    return customer


def _lock_address(address: str) -> None:
    """Two creates of the same address wait for each other (PostgreSQL; SQLite writes one
    at a time anyway), so the uniqueness check above cannot pass twice."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"fleet-ip:{address}"])


@transaction.atomic
def do_create_vm(
    *,
    hostname: str,
    ip_address: str,
    customer_id: int,
    tier: str | None = None,
    credential: int | None = None,
    ssh_user: str | None = None,
    cpu_cores: int | None = None,
    memory_gb: int | None = None,
    disk_gb: int | None = None,
    by=None,
) -> VM:
    """A fleet VM: its inventory node (purpose fleet_host) and its fleet profile. ``tier``
    defaults to the customer's, the sizes to the model's defaults."""
    given = {"cpu_cores": cpu_cores, "memory_gb": memory_gb, "disk_gb": disk_gb}
    sizes = {name: value for name, value in given.items() if value is not None}
    customer = check_customer(customer_id)
    name = check_hostname(hostname)
    address = canonical_address(ip_address)
    _lock_address(address)
    check_address_free(address)
    login = check_credential(credential)
    node_fields: dict[str, Any] = {"ssh_user": ssh_user} if ssh_user else {}
    try:
        node = nodes.do_create_node(
            by=by,
            name=name,
            address=address,
            purpose=NodePurpose.FLEET_HOST,
            credential=login,
            **node_fields,
        )
        vm = VM(node=node, customer=customer, tier=tier or fleet_tier(customer.plan.tier), **sizes)
        vm.full_clean()
    except ValidationError as error:
        raise _in_source_names(error) from None
    vm.save()
    return vm


def _in_source_names(error: ValidationError) -> PortalError:
    """The first problem of a node's or profile's validation, named as the API names it."""
    if not hasattr(error, "error_dict"):
        return PortalError(error.messages[0])
    field, messages = next(iter(error.message_dict.items()))
    return PortalError(messages[0], field=SOURCE_NAMES.get(field, field))


# --- status ------------------------------------------------------------------------------------


def check_status_change(status: str) -> VMStatus:
    if status in DERIVED:
        raise PortalError(
            f"A VM's status cannot be set to {status}: {DERIVED[VMStatus(status)]}. "
            "Set maintenance, or online to end maintenance and clear an error.",
            field="status",
            code="derived_status",
        )
    return VMStatus(status)


@transaction.atomic
def do_set_status(vm: VM, status: str, *, reason: str = "") -> VM:
    """``maintenance``: flag the VM (its alerts are held); ``online``: end maintenance and
    clear a failed action's error (the status is then its liveness's)."""
    wanted = check_status_change(status)
    if wanted == VMStatus.MAINTENANCE:
        changes: dict[str, Any] = {"maintenance": True, "maintenance_reason": reason}
    else:
        changes = {"maintenance": False, "maintenance_reason": "", "last_action_failed": False}
    for name, value in changes.items():
        setattr(vm, name, value)
    vm.save(update_fields=[*changes, "updated_at"])
    vm.__dict__.pop("status", None)  # the annotation, if any, is stale now
    return vm


# --- customers ---------------------------------------------------------------------------------


def plan_for(tier: str) -> Plan:
    """The portal plan of a source tier (pro → the team plan)."""
    plan_tier = FLEET_TIER_TO_PLAN[FleetTier(tier)]
    plan = Plan.objects.filter(tier=plan_tier).first()
    if plan is None:
        raise PortalError(f"There is no {plan_tier} plan for tier {tier}.", field="tier")
    return plan


def do_create_customer(
    *,
    name: str,
    email: str,
    tier: str = FleetTier.STARTER,
    company: str = "",
    billing_status: str | None = None,
    monthly_fee: Decimal | None = None,
) -> Customer:
    """A customer as the source API creates one (its tier picks the plan)."""
    fields: dict[str, Any] = {"company": company}
    if billing_status is not None:
        fields["billing_status"] = billing_status
    if monthly_fee is not None:
        fields["monthly_fee"] = monthly_fee
    return accounts.do_create_customer(name=name, email=email, plan=plan_for(tier), **fields)
