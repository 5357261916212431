"""A launch names what to run; the job's other fields are the portal's (400 naming them),
and customers cannot launch at all."""

import pytest
from django.contrib.auth.models import Group

from portal.core.tenancy import OPERATORS_GROUP
from portal.jobs.models import Job
from tests.factories import CustomerFactory, MembershipFactory, UserFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(user_api):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user_api(user)


@pytest.mark.parametrize(
    "field, value",
    [
        ("status", "successful"),
        ("customer", 1),
        ("requested_by", "root"),
        ("queue", "other"),
        ("action", "workspace.create"),
        ("rc", 0),
        ("worker", "w1"),
        ("sensitive_names", []),
    ],
)
def test_launch_refuses_the_portals_fields(operator_api, field, value):
    CustomerFactory()
    with stubbed_broker():
        response = operator_api.post(
            "/api/jobs/", {"playbook": "ping.yml", field: value}, format="json"
        )
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert not Job.objects.exists()


def test_customers_cannot_launch(user_api):
    with stubbed_broker():
        response = user_api(MembershipFactory().user).post(
            "/api/jobs/", {"playbook": "ping.yml"}, format="json"
        )
    assert response.status_code == 403 and not Job.objects.exists()
