import pytest
from rest_framework.test import APIClient

from tests.factories import AdminFactory, MembershipFactory, UserFactory


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def admin_user(db):
    return AdminFactory(username="root-admin")


@pytest.fixture
def admin_api(api, admin_user):
    api.force_authenticate(admin_user)
    return api


@pytest.fixture
def owner(db):
    """A customer owner: (user, customer)."""
    membership = MembershipFactory()
    return membership.user, membership.customer


@pytest.fixture
def user_api(db):
    """An API client authenticated as a fresh user with no memberships."""
    def make(user=None):
        client = APIClient()
        client.force_authenticate(user or UserFactory())
        return client
    return make
