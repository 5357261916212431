import pytest
from django.contrib.auth.models import Group

from portal.core.tenancy import OPERATORS_GROUP
from portal.nodes.models import Node, NodeGroup
from tests.factories import CredentialFactory, NodeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(user_api):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user_api(user)


def test_operator_registers_node_with_routing(operator_api):
    CredentialFactory(name="deploy-key")
    NodeGroup.objects.create(name="site-a", queue="site-a")
    response = operator_api.post(
        "/api/nodes/",
        {
            "name": "ws-1",
            "address": "10.1.0.5",
            "purpose": "workspace_host",
            "credential": "deploy-key",
            "group": "site-a",
            "labels": {"rack": "r1"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["routing_queue"] == "site-a"
    node = Node.objects.get(name="ws-1")
    assert node.credential.name == "deploy-key" and node.ssh_port == 22


def test_node_queue_overrides_group_and_default(settings):
    group = NodeGroup.objects.create(name="g", queue="gq")
    assert NodeFactory(group=group).routing_queue == "gq"
    assert NodeFactory(group=group, queue="own").routing_queue == "own"
    assert NodeFactory().routing_queue == settings.CELERY_TASK_DEFAULT_QUEUE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Bad Name!"),
        ("ssh_port", 70000),
        ("purpose", "toaster"),
        ("labels", ["not", "a", "mapping"]),
        ("credential", "no-such-key"),
        ("queue", "a b"),
    ],
)
def test_bad_node_input_names_the_field(operator_api, field, value):
    body = {
        "name": "ok",
        "address": "10.0.0.1",
        "purpose": "lab_server",
        "connection": "local",
        field: value,
    }
    response = operator_api.post("/api/nodes/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert not Node.objects.exists()


def test_ssh_node_without_credential_is_400(operator_api):
    response = operator_api.post(
        "/api/nodes/",
        {"name": "nokey", "address": "10.0.0.9", "purpose": "lab_server"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "credential" and "credential" in error["message"]


def test_duplicate_node_name_is_400(operator_api):
    NodeFactory(name="dup")
    response = operator_api.post(
        "/api/nodes/", {"name": "dup", "address": "x", "purpose": "lab_server"}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "name"


def test_customers_cannot_see_nodes(user_api):
    NodeFactory()
    assert user_api().get("/api/nodes/").status_code == 403
