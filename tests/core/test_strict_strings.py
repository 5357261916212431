"""Text fields take strings only: {"name": 123} is a 400, not the name "123" (issue #19)."""

import pytest
from rest_framework import serializers

from portal.core.api.fields import StrictCharField
from portal.nodes.choices import NodePurpose
from portal.nodes.models import Node, NodeGroup
from tests.factories import NodeFactory

NOT_STRINGS = [123, 1.5, True, ["x"], {"x": 1}]


@pytest.mark.parametrize("value", NOT_STRINGS)
def test_the_field_refuses_what_is_not_a_string(value):
    with pytest.raises(serializers.ValidationError) as raised:
        StrictCharField().run_validation(value)
    assert raised.value.detail == ["Not a valid string."]
    assert raised.value.detail[0].code == "invalid"


def test_the_field_takes_a_string():
    assert StrictCharField().run_validation(" ok ") == "ok"


def _name_is_refused(response):
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["errors"][0]["field"] == "name", body
    assert body["message"] == "name: Not a valid string."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, payload",
    [
        ("/api/customers/", {"email": "n@example.com", "plan": "starter"}),
        ("/api/node-groups/", {}),
        ("/api/nodes/", {"address": "10.0.0.9"}),
    ],
)
def test_admin_creates_refuse_a_number_as_name(admin_api, url, payload):
    before = (NodeGroup.objects.count(), Node.objects.count())
    _name_is_refused(admin_api.post(url, {**payload, "name": 123}, format="json"))
    assert (NodeGroup.objects.count(), Node.objects.count()) == before


@pytest.mark.django_db
def test_a_lab_refuses_a_number_as_name(admin_api):
    server = NodeFactory(name="lab-1", purpose=NodePurpose.LAB_SERVER)
    _name_is_refused(
        admin_api.post(
            "/api/labs/",
            {
                "name": 123,
                "server": server.name,
                "provision_script_path": "/opt/p.sh",
                "cleanup_script_path": "/opt/c.sh",
            },
            format="json",
        )
    )


def test_an_owner_renaming_a_customer_to_a_number_is_refused(owner, user_api):
    user, customer = owner
    response = user_api(user).patch(f"/api/customers/{customer.pk}/", {"name": 123}, format="json")
    _name_is_refused(response)
    customer.refresh_from_db()
    assert customer.name != "123"
