"""The shared isolation mechanism: members see their customers' objects only."""

import pytest

from portal.accounts.models import Customer, Membership
from portal.core.tenancy import MembershipRole
from tests.factories import AdminFactory, CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_member_sees_only_own_customers():
    mine = MembershipFactory(role=MembershipRole.MEMBER)
    CustomerFactory()
    assert list(Customer.objects.visible_to(mine.user)) == [mine.customer]


def test_admin_sees_all_and_anonymous_none():
    CustomerFactory.create_batch(3)
    assert Customer.objects.visible_to(AdminFactory()).count() == 3

    class Anonymous:
        is_authenticated = False

    assert Customer.objects.visible_to(Anonymous()).count() == 0


def test_only_owners_change():
    member = MembershipFactory(role=MembershipRole.MEMBER)
    owner = MembershipFactory(role=MembershipRole.OWNER, customer=member.customer)
    assert Customer.objects.changeable_by(member.user).count() == 0
    assert list(Customer.objects.changeable_by(owner.user)) == [member.customer]


def test_nested_path_for_owned_objects():
    """Models below a customer declare customer_path; memberships use "customer"."""
    mine = MembershipFactory()
    MembershipFactory()  # someone else's
    assert set(Membership.objects.visible_to(mine.user)) == {mine}


def test_user_in_two_customers_sees_both_once():
    user = UserFactory()
    first, second = MembershipFactory(user=user), MembershipFactory(user=user)
    MembershipFactory(customer=first.customer)  # a second member must not duplicate rows
    assert sorted(c.pk for c in Customer.objects.visible_to(user)) == sorted(
        [first.customer.pk, second.customer.pk]
    )
