"""Fleet rows for the API tests (helper "api"): customers, VMs with an agent token, beats."""

import secrets
from datetime import timedelta

from django.utils import timezone

from portal.accounts.actions import hash_token
from portal.accounts.choices import PlanTier
from portal.fleet.models import VM
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness
from portal.nodes.choices import NodePurpose
from tests.factories import CustomerFactory, MembershipFactory, NodeFactory, UserFactory, plan

SOURCE_BEAT = {
    "cpu_percent": 25.5,
    "memory_percent": 45.2,
    "disk_percent": 65.0,
    "disk_used_gb": 32.5,
}


def customer(tier: str = PlanTier.STARTER, **fields):
    return CustomerFactory(plan=plan(tier), **fields)


def member_of(a_customer, role: str = "owner"):
    """A user of ``a_customer`` with ``role``."""
    return MembershipFactory(customer=a_customer, user=UserFactory(), role=role).user


def vm(a_customer, *, liveness: str | None = None, version: str = "", token: str = "", **fields):
    """A fleet VM of ``a_customer``; with ``liveness`` (or a token) a liveness row."""
    node = NodeFactory(purpose=NodePurpose.FLEET_HOST)
    row = VM.objects.create(node=node, customer=a_customer, **fields)
    if liveness or token or version:
        NodeLiveness.objects.create(
            node=node,
            status=liveness or Liveness.UNKNOWN,
            token_hash=hash_token(token) if token else "",
            product_version=version,
            last_seen_at=timezone.now() - timedelta(seconds=10) if liveness else None,
        )
    return row


def vm_with_token(a_customer, **fields):
    """(VM, its agent's token)."""
    token = secrets.token_urlsafe(32)
    return vm(a_customer, token=token, **fields), token
