"""Memberships: listed to the customer's people; a direct add is admin-only (owners invite)."""

import pytest

from portal.accounts.models import Membership
from portal.core.tenancy import MembershipRole
from tests.factories import AdminFactory, CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/memberships/"


def test_admin_add_without_role_is_400_not_500(admin_api, owner):
    _, customer = owner
    newbie = UserFactory()
    response = admin_api.post(
        URL, {"customer": customer.pk, "user": newbie.username}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "role"
    assert not Membership.objects.filter(user=newbie).exists()


@pytest.mark.parametrize("victim", ["stranger", "other_owner", "staff", "unknown"])
def test_owner_cannot_add_anyone_and_the_answer_tells_nothing(user_api, owner, victim):
    user, customer = owner
    username = {
        "stranger": lambda: UserFactory().username,
        "other_owner": lambda: MembershipFactory().user.username,
        "staff": lambda: AdminFactory().username,
        "unknown": lambda: "no-such-user",
    }[victim]()
    response = user_api(user).post(
        URL, {"customer": customer.pk, "user": username, "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["message"] == "Only portal admins may do this."
    assert Membership.objects.filter(customer=customer).count() == 1


def test_role_and_customer_of_a_membership_cannot_be_changed(user_api, owner):
    user, customer = owner
    member = MembershipFactory(customer=customer, role=MembershipRole.MEMBER)
    client = user_api(user)
    for method in ("patch", "put"):
        response = getattr(client, method)(f"{URL}{member.pk}/", {"role": "owner"}, format="json")
        assert response.status_code == 405
    member.refresh_from_db()
    assert member.role == MembershipRole.MEMBER


def test_owner_removes_a_member(user_api, owner):
    user, customer = owner
    member = MembershipFactory(customer=customer, role=MembershipRole.MEMBER)
    assert user_api(user).delete(f"{URL}{member.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=member.pk).exists()


@pytest.mark.parametrize(
    "path", ["/api/memberships/", "/api/jobs/", "/api/workspaces/", "/api/invitations/"]
)
def test_customer_filter_same_answer_for_foreign_and_unknown_ids(user_api, owner, path):
    user, _ = owner
    other = CustomerFactory()
    MembershipFactory(customer=other)  # something to find, if the filter leaked
    client = user_api(user)
    unknown = client.get(path, {"customer": other.pk + 1000})
    foreign = client.get(path, {"customer": other.pk})
    assert unknown.status_code == foreign.status_code == 200
    assert (
        unknown.json()
        == foreign.json()
        == {"count": 0, "next": None, "previous": None, "results": []}
    )


@pytest.mark.parametrize(
    "path", ["/api/memberships/", "/api/jobs/", "/api/workspaces/", "/api/invitations/"]
)
@pytest.mark.parametrize("value", ["abc", "0", "1.5", str(10**30)])
def test_customer_filter_bad_values_are_400_not_500(user_api, owner, path, value):
    response = user_api(owner[0]).get(path, {"customer": value})
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "customer"
