"""Workspaces without machines: jobs are published to the stubbed broker (the ``broker``
fixture, tests/conftest.py) and run by the test, or not at all."""

import pytest

from portal.nodes.choices import Connection, NodePurpose
from tests.factories import MembershipFactory, NodeFactory, plan


@pytest.fixture
def ws_node(db):
    return NodeFactory(
        name="ws-node-1",
        address="10.9.0.2",
        purpose=NodePurpose.WORKSPACE_HOST,
        connection=Connection.LOCAL,
        credential=None,
        workspace_port_start=8001,
        workspace_port_end=8100,
    )


@pytest.fixture
def member(db):
    """A customer owner on the team plan: (user, customer)."""
    membership = MembershipFactory(customer__plan=plan("team"))
    return membership.user, membership.customer
