"""Nodes, groups and credentials are operators' and admins' (customers get 403); the
fields the portal computes are refused with a 400 naming them."""

import pytest
from django.contrib.auth.models import Group

from portal.core.tenancy import OPERATORS_GROUP
from portal.nodes.models import Credential, Node
from tests.factories import CredentialFactory, MembershipFactory, NodeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(user_api):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user_api(user)


def test_routing_queue_is_computed_not_written(operator_api):
    node = NodeFactory(queue="")
    response = operator_api.patch(
        f"/api/nodes/{node.pk}/", {"routing_queue": "elsewhere", "queue": "q2"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "routing_queue"
    assert Node.objects.get(pk=node.pk).queue == ""


def test_credential_hint_is_computed_not_written(admin_api):
    credential = CredentialFactory()
    hint = credential.hint
    response = admin_api.patch(
        f"/api/credentials/{credential.pk}/", {"hint": "forged"}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "hint"
    assert Credential.objects.get(pk=credential.pk).hint == hint


@pytest.mark.parametrize("path", ["/api/nodes/", "/api/node-groups/", "/api/credentials/"])
def test_customers_cannot_write_nodes_groups_or_credentials(user_api, path):
    owner = MembershipFactory().user
    response = user_api(owner).post(path, {"name": "mine"}, format="json")
    assert response.status_code == 403
