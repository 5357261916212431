"""200 creates at once: no duplicate port, plan limits exact, every refusal a clear 409."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections, connections

from portal.accounts.models import Plan
from portal.core.errors import Conflict
from portal.workspaces import actions
from portal.workspaces.models import Workspace
from tests.factories import MembershipFactory, NodeFactory
from tests.helpers import stubbed_broker

CUSTOMERS = 40
ATTEMPTS_EACH = 5
LIMIT = 4
PORTS = 150  # fewer than 40 customers x 4: capacity runs out too


@pytest.mark.django_db(transaction=True)
def test_200_parallel_creates_never_collide():
    plan = Plan.objects.create(
        tier="team-small",
        name="Small",
        workspace_limit=LIMIT,
        disk_quota_gb=1,
        cpu_limit=1,
        memory_limit_mb=512,
    )
    NodeFactory(
        name="ws-a",
        purpose="workspace_host",
        workspace_port_start=9001,
        workspace_port_end=9000 + PORTS // 2,
    )
    NodeFactory(
        name="ws-b",
        purpose="workspace_host",
        workspace_port_start=9001,
        workspace_port_end=9000 + PORTS // 2,
    )
    members = [MembershipFactory(customer__plan=plan) for _ in range(CUSTOMERS)]
    requests = [(m, f"ide {i}") for m in members for i in range(ATTEMPTS_EACH)]

    def create(request):
        membership, name = request
        try:
            actions.do_create(membership.customer, membership.user, name)
            return "created"
        except Conflict as refused:
            return refused.code
        finally:
            close_old_connections()
            connections.close_all()

    with stubbed_broker(), ThreadPoolExecutor(16) as pool:
        outcomes = Counter(pool.map(create, requests))

    live = Workspace.objects.live()
    assert outcomes["created"] == live.count() == PORTS, outcomes
    assert set(outcomes) <= {"created", "plan_limit", "no_capacity"}, outcomes
    ports = list(live.values_list("node_id", "port"))
    assert len(set(ports)) == len(ports)  # no port twice on a node
    per_customer = Counter(live.values_list("customer_id", flat=True))
    assert max(per_customer.values()) <= LIMIT
    users = list(live.values_list("node_id", "linux_username"))
    assert len(set(users)) == len(users)
    slugs = list(live.values_list("slug", flat=True))
    assert len(set(slugs)) == len(slugs)
