"""Issue #12, finding 4: owners invite by email; the invited person accepts.

No answer tells the inviter whether the address has an account; a token is stored hashed,
expires, and works once.
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from portal.accounts.actions import hash_token
from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Invitation, Membership
from portal.core.tenancy import MembershipRole
from tests.factories import AdminFactory, CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/invitations/"
LINK = re.compile(r"https?://\S+/invitations/([A-Za-z0-9_-]+)/")


def _invite(client, customer, email="new.person@example.com", role="member"):
    return client.post(URL, {"customer": customer.pk, "email": email, "role": role}, format="json")


def _token_from_last_email() -> str:
    return LINK.search(mail.outbox[-1].body).group(1)


def _comparable(response) -> dict:
    body = dict(response.json())
    for key in ("id", "email", "created_at", "expires_at"):
        body.pop(key)
    return body


def test_owner_invites_by_email_and_the_token_is_stored_hashed(user_api, owner, settings):
    settings.PORTAL_URL = "https://portal.example.test"
    user, customer = owner
    response = _invite(user_api(user), customer, email="New.Person@Example.com")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "new.person@example.com" and body["status"] == "pending"
    assert body["customer"] == customer.pk and body["invited_by"] == user.username
    assert "token" not in body and "token_hash" not in body
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert customer.name in message.subject and message.from_email == settings.DEFAULT_FROM_EMAIL
    token = _token_from_last_email()
    assert "https://portal.example.test/invitations/" in message.body
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hash_token(token) and token not in invitation.token_hash
    days = (invitation.expires_at - timezone.now()).total_seconds() / 86400
    assert 6.99 < days <= 7


def test_expiry_follows_the_setting(admin_api, owner, settings):
    settings.INVITATION_DAYS = 2
    _invite(admin_api, owner[1])
    days = (Invitation.objects.get().expires_at - timezone.now()).total_seconds() / 86400
    assert 1.99 < days <= 2


def test_inviting_an_existing_account_looks_exactly_like_a_new_address(user_api, owner):
    user, customer = owner
    existing = UserFactory(email="known@example.com")
    other_owner = MembershipFactory().user  # another customer's owner
    staff = AdminFactory(email="staff@example.com")
    client = user_api(user)
    answers = [
        _invite(client, customer, email=email)
        for email in ("nobody@example.com", existing.email, other_owner.email, staff.email)
    ]
    assert {a.status_code for a in answers} == {201}
    assert all(_comparable(a) == _comparable(answers[0]) for a in answers)
    bodies = [m.body.replace(m.to[0], "") for m in mail.outbox]
    bodies = [LINK.sub("LINK", b) for b in bodies]
    assert len(set(bodies)) == 1 and len({m.subject for m in mail.outbox}) == 1
    # nobody was added: each must accept
    assert not Membership.objects.filter(customer=customer).exclude(user=user).exists()


def test_new_person_accepts_by_creating_an_account(api, owner):
    user, customer = owner
    from rest_framework.test import APIClient

    _invite(APIClient(), customer)  # anonymous: refused
    assert not mail.outbox
    inviter = APIClient()
    inviter.force_authenticate(user)
    _invite(inviter, customer, role="member")
    token = _token_from_last_email()
    response = api.post(
        f"{URL}accept/",
        {"token": token, "username": "newbie", "password": "a-long-passphrase-42"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "customer": customer.pk,
        "customer_name": customer.name,
        "role": "member",
        "username": "newbie",
    }
    membership = Membership.objects.get(user__username="newbie")
    assert membership.customer == customer and membership.role == MembershipRole.MEMBER
    assert membership.user.email == "new.person@example.com"
    assert membership.user.check_password("a-long-passphrase-42")
    invitation = Invitation.objects.get()
    assert invitation.status == InvitationStatus.ACCEPTED
    assert invitation.accepted_by == membership.user and invitation.accepted_at
    token_login = api.post(
        "/api/auth/token/", {"username": "newbie", "password": "a-long-passphrase-42"}
    )
    assert token_login.status_code == 200


def test_signed_in_user_accepts_as_themselves(user_api, owner):
    user, customer = owner
    _invite(user_api(user), customer, email="other@example.com", role="owner")
    invited = UserFactory(email="somewhere-else@example.com")
    response = user_api(invited).post(
        f"{URL}accept/", {"token": _token_from_last_email()}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert Membership.objects.get(user=invited, customer=customer).role == MembershipRole.OWNER


def test_a_token_works_once(user_api, owner):
    user, customer = owner
    _invite(user_api(user), customer)
    token = _token_from_last_email()
    first, second = UserFactory(), UserFactory()
    assert user_api(first).post(f"{URL}accept/", {"token": token}, format="json").status_code == 200
    again = user_api(second).post(f"{URL}accept/", {"token": token}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "token"
    assert not Membership.objects.filter(user=second).exists()


@pytest.mark.parametrize("spoil", ["expired", "revoked", "unknown"])
def test_expired_revoked_and_unknown_tokens_get_one_answer(user_api, owner, api, spoil):
    user, customer = owner
    client = user_api(user)
    _invite(client, customer)
    token = _token_from_last_email()
    invitation = Invitation.objects.get()
    if spoil == "expired":
        Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif spoil == "revoked":
        assert client.post(f"{URL}{invitation.pk}/revoke/").status_code == 200
    else:
        token = token[:-4] + "AAAA"
    response = api.post(
        f"{URL}accept/",
        {"token": token, "username": "someone", "password": "a-long-passphrase-42"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "token" and error["code"] == "invalid_token"
    assert "not valid" in error["message"]
    assert not Membership.objects.filter(user__username="someone").exists()
    invitation.refresh_from_db()
    assert (
        invitation.status
        == {"expired": "expired", "revoked": "revoked", "unknown": "pending"}[spoil]
    )


def test_username_taken_is_told_only_to_a_valid_token_holder(api, owner, user_api):
    UserFactory(username="taken")
    bad_token = api.post(
        f"{URL}accept/",
        {"token": "nonsense", "username": "taken", "password": "a-long-passphrase-42"},
        format="json",
    )
    assert bad_token.json()["errors"][0]["field"] == "token"  # not a word about the username
    user, customer = owner
    _invite(user_api(user), customer)
    response = api.post(
        f"{URL}accept/",
        {
            "token": _token_from_last_email(),
            "username": "Taken",
            "password": "a-long-passphrase-42",
        },
        format="json",
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "username"
    assert Invitation.objects.get().status == InvitationStatus.PENDING  # still usable


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "", "password": "a-long-passphrase-42"}, "username"),
        ({"username": "ok"}, "password"),
        ({"username": "ok", "password": "123"}, "password"),
        ({"username": "bad name!", "password": "a-long-passphrase-42"}, "username"),
        ({}, "username"),
    ],
)
def test_new_account_input_is_checked(api, owner, user_api, body, field):
    user, customer = owner
    _invite(user_api(user), customer)
    response = api.post(f"{URL}accept/", {"token": _token_from_last_email(), **body}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert Invitation.objects.get().status == InvitationStatus.PENDING


def test_accept_without_token_is_400(api):
    response = api.post(f"{URL}accept/", {}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "token"


def test_existing_member_accepting_keeps_membership_or_becomes_owner(user_api, owner):
    user, customer = owner
    member = MembershipFactory(customer=customer, role=MembershipRole.MEMBER)
    client = user_api(user)
    _invite(client, customer, role="member")
    assert (
        user_api(member.user)
        .post(f"{URL}accept/", {"token": _token_from_last_email()}, format="json")
        .status_code
        == 200
    )
    member.refresh_from_db()
    assert member.role == MembershipRole.MEMBER
    _invite(client, customer, role="owner")
    assert (
        user_api(member.user)
        .post(f"{URL}accept/", {"token": _token_from_last_email()}, format="json")
        .status_code
        == 200
    )
    member.refresh_from_db()
    assert member.role == MembershipRole.OWNER
    assert Membership.objects.filter(customer=customer, user=member.user).count() == 1


def test_members_and_strangers_cannot_invite(user_api, owner):
    user, customer = owner
    member = MembershipFactory(customer=customer, role=MembershipRole.MEMBER)
    other = CustomerFactory()
    for client_user, target in ((member.user, customer), (user, other), (UserFactory(), other)):
        response = _invite(user_api(client_user), target)
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["field"] == "customer" and error["code"] == "does_not_exist"
    assert not Invitation.objects.exists() and not mail.outbox


def test_foreign_and_unknown_customer_ids_get_the_same_answer(user_api, owner):
    user, _ = owner
    other = CustomerFactory()
    client = user_api(user)
    foreign = _invite(client, other).json()
    unknown = _invite(client, type(other)(pk=other.pk + 1000)).json()
    assert foreign["errors"][0]["message"].replace(str(other.pk), "N") == unknown["errors"][0][
        "message"
    ].replace(str(other.pk + 1000), "N")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email", "role": "member"}, "email"),
        ({"email": "a@example.com", "role": "admin"}, "role"),
        ({"email": "a@example.com"}, "role"),
        ({"role": "member"}, "email"),
        ({"email": "a@example.com", "role": "member", "status": "accepted"}, "status"),
        ({"email": "a@example.com", "role": "member", "invited_by": "root"}, "invited_by"),
        (
            {"email": "a@example.com", "role": "member", "expires_at": "2999-01-01T00:00:00Z"},
            "expires_at",
        ),
    ],
)
def test_bad_invitation_input_is_a_400_naming_the_field(user_api, owner, body, field):
    user, customer = owner
    response = user_api(user).post(URL, {"customer": customer.pk, **body}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert not Invitation.objects.exists()


def test_owners_list_and_revoke_their_own_admins_see_all(user_api, owner, admin_api):
    user, customer = owner
    other = MembershipFactory()
    other_owner, other_customer = other.user, other.customer
    _invite(user_api(user), customer, email="a@example.com")
    _invite(user_api(other_owner), other_customer, email="b@example.com")
    mine = user_api(user).get(URL).json()
    assert [i["email"] for i in mine["results"]] == ["a@example.com"]
    theirs = Invitation.objects.get(email="b@example.com")
    assert user_api(user).get(f"{URL}{theirs.pk}/").status_code == 404
    assert user_api(user).post(f"{URL}{theirs.pk}/revoke/").status_code == 404
    assert {i["email"] for i in admin_api.get(URL).json()["results"]} == {
        "a@example.com",
        "b@example.com",
    }
    member = MembershipFactory(customer=customer, role=MembershipRole.MEMBER)
    assert user_api(member.user).get(URL).json()["count"] == 0  # members see none
    own = Invitation.objects.get(email="a@example.com")
    revoked = user_api(user).post(f"{URL}{own.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = user_api(user).post(f"{URL}{own.pk}/revoke/")
    assert again.status_code == 409
    assert admin_api.post(f"{URL}{theirs.pk}/revoke/").status_code == 200


def test_status_filter_counts_a_lapsed_pending_invitation_as_expired(admin_api, owner):
    _invite(admin_api, owner[1], email="a@example.com")
    _invite(admin_api, owner[1], email="b@example.com")
    Invitation.objects.filter(email="a@example.com").update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = admin_api.get(URL, {"status": "expired"}).json()["results"]
    pending = admin_api.get(URL, {"status": "pending"}).json()["results"]
    assert [i["email"] for i in expired] == ["a@example.com"]
    assert expired[0]["status"] == "expired"
    assert [i["email"] for i in pending] == ["b@example.com"]


def test_a_new_invitation_replaces_a_pending_one(user_api, owner):
    user, customer = owner
    client = user_api(user)
    _invite(client, customer)
    first = _token_from_last_email()
    _invite(client, customer)
    second = _token_from_last_email()
    assert list(Invitation.objects.order_by("id").values_list("status", flat=True)) == [
        "revoked",
        "pending",
    ]
    stranger = UserFactory()
    assert (
        user_api(stranger).post(f"{URL}accept/", {"token": first}, format="json").status_code == 400
    )
    assert (
        user_api(stranger).post(f"{URL}accept/", {"token": second}, format="json").status_code
        == 200
    )


def test_a_failed_email_keeps_nothing_and_says_so(user_api, owner, settings):
    from unittest import mock

    user, customer = owner
    with mock.patch("portal.accounts.actions.send_mail", side_effect=OSError("refused")):
        response = _invite(user_api(user), customer)
    assert response.status_code == 503 and response.json()["code"] == "email_unavailable"
    assert not Invitation.objects.exists()


def test_customer_filter_on_invitations_does_not_reveal_ids(user_api, owner):
    user, _ = owner
    other = CustomerFactory()
    client = user_api(user)
    unknown = client.get(URL, {"customer": 999999})
    foreign = client.get(URL, {"customer": other.pk})
    assert unknown.status_code == foreign.status_code == 200
    assert unknown.json()["count"] == foreign.json()["count"] == 0


def test_a_customer_name_with_line_breaks_still_makes_a_valid_subject(admin_api, owner):
    _, customer = owner
    type(customer).objects.filter(pk=customer.pk).update(name="Acme\r\nBcc: x@evil.test")
    response = _invite(admin_api, customer)
    assert response.status_code == 201, response.json()
    assert mail.outbox[-1].subject == (
        "You are invited to join Acme Bcc: x@evil.test on the provisioning portal"
    )
    assert mail.outbox[-1].bcc == []
