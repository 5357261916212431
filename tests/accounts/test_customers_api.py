import pytest

from portal.accounts.models import Customer, Membership
from portal.core.tenancy import MembershipRole
from tests.factories import CustomerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _new_customer(**overrides):
    return {
        "name": "Acme",
        "email": "ops@acme.test",
        "company": "Acme Inc",
        "plan": "team",
        "monthly_fee": "99.00",
        **overrides,
    }


def test_admin_creates_customer(admin_api):
    response = admin_api.post("/api/customers/", _new_customer(), format="json")
    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(email="ops@acme.test")
    assert customer.plan.tier == "team" and str(customer.monthly_fee) == "99.00"
    assert response.json()["role"] == "admin"


def test_duplicate_email_is_400_naming_email_even_with_other_case(admin_api):
    CustomerFactory(email="ops@acme.test")
    response = admin_api.post(
        "/api/customers/", _new_customer(email="OPS@Acme.test"), format="json"
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "email" and "already exists" in error["message"]
    assert Customer.objects.count() == 1


def test_unknown_plan_is_400(admin_api):
    response = admin_api.post("/api/customers/", _new_customer(plan="gold"), format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "plan"


def test_negative_fee_is_400(admin_api):
    response = admin_api.post("/api/customers/", _new_customer(monthly_fee="-1"), format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "monthly_fee"


def test_members_see_only_their_customers(user_api):
    mine = MembershipFactory(role=MembershipRole.MEMBER)
    other = CustomerFactory()
    client = user_api(mine.user)
    listing = client.get("/api/customers/").json()
    assert [c["id"] for c in listing["results"]] == [mine.customer.pk]
    assert listing["results"][0]["role"] == "member"
    assert client.get(f"/api/customers/{other.pk}/").status_code == 404
    assert (
        client.patch(f"/api/customers/{other.pk}/", {"name": "x"}, format="json").status_code == 404
    )


def test_customers_cannot_create_or_delete(user_api, owner):
    user, customer = owner
    client = user_api(user)
    assert client.post("/api/customers/", _new_customer(), format="json").status_code == 403
    assert client.delete(f"/api/customers/{customer.pk}/").status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_owner_renames_but_cannot_change_billing(user_api, owner):
    user, customer = owner
    client = user_api(user)
    response = client.patch(
        f"/api/customers/{customer.pk}/",
        {"name": "Renamed", "billing_status": "inactive", "monthly_fee": "0"},
        format="json",
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"billing_status", "monthly_fee"}
    customer.refresh_from_db()
    assert customer.name != "Renamed" and customer.billing_status == "active"
    response = client.patch(f"/api/customers/{customer.pk}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.name == "Renamed"


def test_member_cannot_rename(user_api):
    member = MembershipFactory(role=MembershipRole.MEMBER)
    response = user_api(member.user).patch(
        f"/api/customers/{member.customer.pk}/", {"name": "x"}, format="json"
    )
    assert response.status_code == 403


def test_plans_are_listed_with_defaults(user_api):
    plans = {p["tier"]: p for p in user_api().get("/api/plans/").json()["results"]}
    assert [plans[t]["disk_quota_gb"] for t in ("starter", "team", "enterprise")] == [10, 50, 250]


def test_plans_are_paginated_like_every_other_list(user_api):
    # Issue #19: /api/plans/ answered a bare list while the other lists are pages.
    body = user_api().get("/api/plans/", {"page_size": 2}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_me(user_api, owner):
    user, customer = owner
    body = user_api(user).get("/api/me/").json()
    assert body["username"] == user.username
    assert body["memberships"] == [
        {"customer": customer.pk, "customer_name": customer.name, "role": "owner"}
    ]


def test_admin_adds_member_directly_and_owner_cannot_remove_last_owner(user_api, owner, admin_api):
    from tests.factories import UserFactory

    user, customer = owner
    newbie = UserFactory()
    body = {"customer": customer.pk, "user": newbie.username, "role": "member"}
    added = admin_api.post("/api/memberships/", body, format="json")
    assert added.status_code == 201, added.json()
    again = admin_api.post("/api/memberships/", body, format="json")
    assert again.status_code == 409
    own = Membership.objects.get(user=user, customer=customer)
    refused = user_api(user).delete(f"/api/memberships/{own.pk}/")
    assert refused.status_code == 409 and "owner" in refused.json()["message"]


def test_owners_and_members_cannot_add_members_directly(user_api, owner):
    """Owners invite (tests/accounts/test_invitations_api.py); a direct add is admin-only."""
    from tests.factories import UserFactory

    user, customer = owner
    member = MembershipFactory(role=MembershipRole.MEMBER)
    other = CustomerFactory()
    stranger = UserFactory()
    for client_user, target in ((user, customer), (member.user, member.customer), (user, other)):
        response = user_api(client_user).post(
            "/api/memberships/",
            {"customer": target.pk, "user": stranger.username, "role": "member"},
            format="json",
        )
        assert response.status_code == 403, response.json()
        assert "admin" in response.json()["message"]
    assert not Membership.objects.filter(user=stranger).exists()


def test_customer_filter_does_not_reveal_which_ids_exist(user_api):
    member = MembershipFactory(role=MembershipRole.MEMBER)
    other = CustomerFactory()
    client = user_api(member.user)
    for path in ("/api/memberships/", "/api/jobs/"):
        unknown = client.get(path, {"customer": 999999})
        foreign = client.get(path, {"customer": other.pk})
        assert unknown.status_code == foreign.status_code == 200
        assert unknown.json()["count"] == foreign.json()["count"] == 0
