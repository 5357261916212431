"""A delete refused because other objects still refer to it says what holds it (issue #19:
"This conflicts with an existing record")."""

import pytest
from django.db.models import ProtectedError

from portal.core.api.errors import protected_message
from portal.labs.models import Lab
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Node
from portal.workspaces.models import Workspace
from tests.factories import CustomerFactory, NodeFactory, UserFactory

pytestmark = pytest.mark.django_db


def _workspace(node, customer, owner, n):
    return Workspace.objects.create(
        customer=customer,
        owner=owner,
        name=f"ws {n}",
        slug=f"ws-{n}",
        node=node,
        port=8000 + n,
        linux_username=f"ws{n}",
        disk_quota_gb=10,
        cpu_limit=1,
        memory_limit_mb=512,
    )


def test_deleting_a_node_in_use_names_what_holds_it(admin_api):
    node = NodeFactory(name="web-1", purpose=NodePurpose.WORKSPACE_HOST)
    customer, owner = CustomerFactory(), UserFactory()
    for n in range(1, 5):
        _workspace(node, customer, owner, n)
    Lab.objects.create(
        name="intro", server=node, provision_script_path="/p.sh", cleanup_script_path="/c.sh"
    )
    response = admin_api.delete(f"/api/nodes/{node.pk}/")
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["code"] == "protected" and body["errors"][0]["field"] is None
    message = body["message"]
    assert message.startswith("Node web-1 is still used by ")
    assert "4 workspaces (ws 1 (ws-1), ws 2 (ws-2), ws 3 (ws-3), …)" in message
    assert "1 lab (intro)" in message and message.endswith(": delete or move them first.")
    assert Node.objects.filter(pk=node.pk).exists()


def test_the_message_is_built_for_any_protected_delete():
    customers = [CustomerFactory(name=name) for name in ("Acme", "Bolt")]
    message = protected_message(ProtectedError("refused", set(customers)))
    assert message == (
        "This object is still used by 2 customers (Acme, Bolt): delete or move them first."
    )
