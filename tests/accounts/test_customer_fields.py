"""Issue #12, finding 3: an owner changes only name and company of their customer.

The rule (README, API): a field the caller may not change is a 400 naming it, and nothing
of the request is stored.
"""

import pytest

from portal.accounts.models import Customer
from portal.core.tenancy import MembershipRole
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

# field sent by the owner, value, how to read the stored value
REFUSED = [
    ("plan", "enterprise", lambda c: c.plan.tier),
    ("email", "new@evil.test", lambda c: c.email),
    ("billing_status", "inactive", lambda c: c.billing_status),
    ("monthly_fee", "0.00", lambda c: str(c.monthly_fee)),
    ("role", "admin", None),
]


def _stored(customer):
    customer = Customer.objects.select_related("plan").get(pk=customer.pk)
    return (
        customer.name,
        customer.email,
        customer.plan.tier,
        customer.billing_status,
        str(customer.monthly_fee),
        customer.company,
    )


@pytest.fixture
def paying_owner(owner):
    user, customer = owner
    Customer.objects.filter(pk=customer.pk).update(monthly_fee="19.00")
    customer.refresh_from_db()
    return user, customer


@pytest.mark.parametrize("field, value, read", REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize("method", ["patch", "put"])
def test_owner_cannot_change(user_api, paying_owner, method, field, value, read):
    user, customer = paying_owner
    before = _stored(customer)
    body = {"name": "Renamed", field: value}
    response = getattr(user_api(user), method)(
        f"/api/customers/{customer.pk}/", body, format="json"
    )
    assert response.status_code == 400, response.json()
    error = response.json()["errors"][0]
    assert error["field"] == field and error["code"] == "read_only"
    assert response.json()["message"] == f"{field}: You may not change this field."
    assert _stored(customer) == before  # not even the name


def test_owner_changes_name_and_company(user_api, paying_owner):
    user, customer = paying_owner
    response = user_api(user).patch(
        f"/api/customers/{customer.pk}/", {"name": "New name", "company": "New Co"}, format="json"
    )
    assert response.status_code == 200, response.json()
    customer.refresh_from_db()
    assert (customer.name, customer.company) == ("New name", "New Co")
    assert response.json()["plan"] == customer.plan.tier  # still shown, read-only


def test_owner_may_send_back_id_and_created_at(user_api, paying_owner):
    """What a GET returns that nobody writes (id, created_at) is ignored, not refused."""
    user, customer = paying_owner
    client = user_api(user)
    current = client.get(f"/api/customers/{customer.pk}/").json()
    response = client.patch(
        f"/api/customers/{customer.pk}/",
        {"id": current["id"], "created_at": current["created_at"], "name": "Same"},
        format="json",
    )
    assert response.status_code == 200, response.json()


def test_member_cannot_change_anything(user_api):
    member = MembershipFactory(role=MembershipRole.MEMBER)
    before = _stored(member.customer)
    response = user_api(member.user).patch(
        f"/api/customers/{member.customer.pk}/", {"plan": "enterprise"}, format="json"
    )
    assert response.status_code == 403
    assert _stored(member.customer) == before


def test_admin_changes_plan_email_and_billing(admin_api, paying_owner):
    _, customer = paying_owner
    response = admin_api.patch(
        f"/api/customers/{customer.pk}/",
        {
            "plan": "enterprise",
            "email": "New@Example.test",
            "billing_status": "overdue",
            "monthly_fee": "499.00",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    customer.refresh_from_db()
    assert customer.plan.tier == "enterprise" and customer.email == "new@example.test"
    assert customer.billing_status == "overdue" and str(customer.monthly_fee) == "499.00"


def test_admin_cannot_set_the_computed_role(admin_api, owner):
    _, customer = owner
    response = admin_api.patch(f"/api/customers/{customer.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "role"
