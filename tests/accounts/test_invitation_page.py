"""The page an invitation email links to: sign up or join while signed in."""

import pytest
from django.core import mail

from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Invitation, Membership
from tests.accounts.test_invitations_api import _invite, _token_from_last_email
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(owner, user_api):
    user, customer = owner
    assert _invite(user_api(user), customer).status_code == 201
    return _token_from_last_email()


def test_the_email_links_to_the_page(client, token):
    path = f"/invitations/{token}/"
    assert path in mail.outbox[-1].body
    page = client.get(path)
    assert page.status_code == 200
    text = page.content.decode()
    assert Invitation.objects.get().customer.name in text
    assert "Create account and join" in text and "Log in" in text
    assert page["Cache-Control"].startswith("max-age=0")


def test_a_new_person_signs_up_and_is_signed_in(client, token):
    response = client.post(
        f"/invitations/{token}/",
        {
            "username": "newbie",
            "password": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/workspaces/"
    membership = Membership.objects.get(user__username="newbie")
    assert membership.customer == Invitation.objects.get().customer
    assert client.get("/workspaces/").status_code == 200  # signed in
    assert Invitation.objects.get().status == InvitationStatus.ACCEPTED


def test_signup_errors_are_shown_and_keep_the_invitation(client, token):
    differ = client.post(
        f"/invitations/{token}/",
        {"username": "newbie", "password": "a-long-passphrase-42", "password2": "other"},
    )
    assert differ.status_code == 400 and "differ" in differ.content.decode()
    weak = client.post(
        f"/invitations/{token}/", {"username": "newbie", "password": "123", "password2": "123"}
    )
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    assert not Membership.objects.filter(user__username="newbie").exists()
    assert Invitation.objects.get().status == InvitationStatus.PENDING


def test_a_signed_in_user_joins(client, token):
    invited = UserFactory()
    client.force_login(invited)
    page = client.get(f"/invitations/{token}/")
    assert f"Join as {invited.username}" in page.content.decode()
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 302
    assert Membership.objects.filter(user=invited).exists()


def test_an_invalid_link_says_so_without_details(client, token):
    Invitation.objects.update(status=InvitationStatus.REVOKED)
    for path in (f"/invitations/{token}/", "/invitations/nonsense/"):
        page = client.get(path)
        assert page.status_code == 404
        assert "not valid" in page.content.decode()
        assert (
            client.post(
                path,
                {
                    "username": "x",
                    "password": "a-long-passphrase-42",
                    "password2": "a-long-passphrase-42",
                },
            ).status_code
            == 404
        )
    assert not Membership.objects.filter(user__username="x").exists()
