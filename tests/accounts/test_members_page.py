"""The Members page (#19): an owner sees the members and pending invitations, invites by
email and role (a refusal next to its field) and revokes; a member sees the members only
and cannot invite or revoke through the page either (the API refuses them too:
test_invitations_api.test_members_and_strangers_cannot_invite)."""

import re

import pytest
from django.core import mail
from django.test import Client

from portal.accounts import actions
from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Invitation
from portal.core.tenancy import MembershipRole
from tests.factories import AdminFactory, CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/members/"


@pytest.fixture(autouse=True)
def locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def team(owner):
    user, customer = owner
    member = MembershipFactory(
        customer=customer,
        role=MembershipRole.MEMBER,
        user=UserFactory(username="bob", email="bob@example.com"),
    ).user
    return user, member, customer


def test_the_owner_sees_members_invitations_and_the_form(team):
    owner, _, customer = team
    actions.do_invite(customer, "pending@example.com", by=owner)
    page = client_of(owner).get(URL).content.decode()
    assert customer.name in page and 'data-username="bob"' in page
    assert f'data-username="{owner.username}"' in page and "(you)" in page
    assert 'data-email="pending@example.com"' in page
    assert 'data-testid="invite-form"' in page and 'data-testid="invitation-revoke"' in page


def test_a_member_sees_the_members_only(team):
    owner, member, customer = team
    actions.do_invite(customer, "pending@example.com", by=owner)
    page = client_of(member).get(URL).content.decode()
    assert f'data-username="{owner.username}"' in page and 'data-username="bob"' in page
    assert "its owners invite new members" in page
    assert "pending@example.com" not in page
    assert 'data-testid="invite-form"' not in page


def test_an_owner_invites_and_sees_the_invitation_pending(team):
    owner, _, customer = team
    client = client_of(owner)
    response = client.post(
        URL, {"customer": customer.pk, "email": "New@Example.com", "role": "owner"}
    )
    assert response.status_code == 302 and response.url == URL
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new@example.com",
        "owner",
        owner,
    )
    assert mail.outbox[-1].to == ["new@example.com"]
    assert re.search(r"http://testserver/invitations/[\w-]+/", mail.outbox[-1].body)
    page = client.get(URL).content.decode()
    assert "Invitation sent to new@example.com (owner)." in page
    assert 'data-email="new@example.com"' in page


@pytest.mark.parametrize(
    ("email", "role", "field", "words"),
    [
        ("not an address", "member", "email", "valid email"),
        ("", "member", "email", "required"),
        ("x@example.com", "superuser", "role", "valid choice"),
    ],
)
def test_bad_input_is_shown_next_to_its_field(team, email, role, field, words):
    owner, _, customer = team
    response = client_of(owner).post(URL, {"customer": customer.pk, "email": email, "role": role})
    assert response.status_code == 400
    page = response.content.decode()
    error = re.search(rf'data-testid="invite-error-{field}">([^<]*)<', page)
    assert error and words in error.group(1).lower()
    assert 'aria-invalid="true"' in page
    assert not Invitation.objects.exists() and not mail.outbox


def test_a_member_cannot_invite_through_the_page(team):
    _, member, customer = team
    response = client_of(member).post(
        URL, {"customer": customer.pk, "email": "x@example.com", "role": "member"}
    )
    assert response.status_code == 400
    assert f"No customer {customer.pk} that you own" in response.content.decode()
    assert not Invitation.objects.exists() and not mail.outbox


def test_another_customers_id_is_refused(team):
    owner, _, _ = team
    other = CustomerFactory()
    response = client_of(owner).post(
        URL, {"customer": other.pk, "email": "x@example.com", "role": "member"}
    )
    assert response.status_code == 400 and not Invitation.objects.exists()


def test_the_owner_revokes_a_pending_invitation(team):
    owner, member, customer = team
    invitation = actions.do_invite(customer, "pending@example.com", by=owner)
    revoke = f"/members/invitations/{invitation.pk}/revoke/"

    assert client_of(member).post(revoke).status_code == 404  # not theirs to change
    assert client_of(UserFactory()).post(revoke).status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING

    client = client_of(owner)
    assert client.get(revoke).status_code == 405
    response = client.post(revoke)
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED
    page = client.get(URL).content.decode()
    assert "Invitation to pending@example.com revoked." in page
    assert 'data-testid="invitations-empty"' in page

    again = client.post(revoke)  # already revoked: said, not a 500
    assert again.status_code == 302
    assert "Only a pending invitation can be revoked" in client.get(URL).content.decode()


def test_someone_of_no_customer_is_told_so(db):
    page = client_of(AdminFactory()).get(URL).content.decode()
    assert 'data-testid="members-none"' in page and "/admin/" in page
    assert Client().get(URL).status_code == 302  # login first
