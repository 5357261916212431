"""The owner's Members page in a real browser, under the Content-Security-Policy (#19): the
members and pending invitations, an invitation refused with the reason next to the field,
then sent (and emailed), then revoked; a member of the same customer sees no invite form.
Chromium must report no CSP violation and no script error."""

import os
import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Invitation
from portal.core.tenancy import MembershipRole
from tests.browser import PASSWORD, needs_chromium
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]
SHOTS = os.environ.get("PORTAL_SCREENSHOTS")  # a directory: save the pages seen, to look at


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


@pytest.fixture
def team(transactional_db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    owner = MembershipFactory(
        user__username="olga",
        user__email="olga@example.com",
        user__first_name="Olga",
        user__last_name="Owner",
        customer__name="Acme Labs",
    ).user
    customer = owner.memberships.get().customer
    member = MembershipFactory(
        customer=customer,
        role=MembershipRole.MEMBER,
        user=UserFactory(username="mo", email="mo@example.com"),
    ).user
    return owner, member, customer


def log_in(page, user):
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/workspaces/$"))


def test_an_owner_invites_and_revokes_on_the_members_page(browser_page, team):
    page, problems = browser_page
    owner, member, customer = team
    log_in(page, owner)
    page.get_by_test_id("nav-members").click()
    expect(page).to_have_url(re.compile(r"/members/$"))
    section = page.get_by_test_id("members-customer")
    expect(section.get_by_role("heading", name="Acme Labs")).to_be_visible()
    expect(section.locator('[data-testid="member"][data-username="olga"]')).to_contain_text(
        "Olga Owner (you)"
    )
    expect(section.locator('[data-testid="member"][data-username="mo"]')).to_contain_text("Member")
    expect(section.get_by_test_id("invitations-empty")).to_be_visible()
    shot(page, "members-empty")

    # A bad address: the reason next to the email field, nothing sent.
    section.get_by_test_id("invite-email").fill("not-an-address")
    section.get_by_test_id("invite-submit").click()
    section = page.get_by_test_id("members-customer")
    expect(section.get_by_test_id("invite-error-email")).to_contain_text("valid email")
    expect(section.get_by_test_id("invite-email")).to_have_attribute("aria-invalid", "true")
    expect(section.get_by_test_id("invite-email")).to_have_value("not-an-address")
    assert not Invitation.objects.exists() and not mail.outbox
    shot(page, "members-field-error")

    # A good one, as an owner: sent, emailed, listed as pending.
    section.get_by_test_id("invite-email").fill("Pat@Example.com")
    section.get_by_test_id("invite-role").select_option("owner")
    section.get_by_test_id("invite-submit").click()
    expect(page).to_have_url(re.compile(r"/members/$"))
    expect(page.get_by_test_id("members-message")).to_have_text(
        "Invitation sent to pat@example.com (owner)."
    )
    row = page.locator('[data-testid="invitation"][data-email="pat@example.com"]')
    expect(row).to_contain_text("Owner")
    expect(row).to_contain_text("olga")
    expect(page.get_by_test_id("invite-error-email")).to_have_count(0)
    assert [m.to for m in mail.outbox] == [["pat@example.com"]]
    invitation = Invitation.objects.get()
    assert (invitation.customer, invitation.role) == (customer, MembershipRole.OWNER)
    shot(page, "members-invited")

    # Revoke it: gone from the list, and its link no longer works.
    row.get_by_test_id("invitation-revoke").click()
    expect(page.get_by_test_id("members-message")).to_have_text(
        "Invitation to pat@example.com revoked."
    )
    expect(page.get_by_test_id("invitation")).to_have_count(0)
    expect(page.get_by_test_id("invitations-empty")).to_be_visible()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED

    # A member of the same customer sees the members, and no form or invitations.
    page.get_by_role("button", name=re.compile("Log out")).click()
    log_in(page, member)
    page.goto("/members/")
    expect(page.locator('[data-testid="member"][data-username="olga"]')).to_be_visible()
    expect(page.get_by_test_id("invite-form")).to_have_count(0)
    expect(page.get_by_test_id("invitations-list")).to_have_count(0)
    expect(page.get_by_test_id("members-customer")).to_contain_text("its owners invite new members")
    shot(page, "members-as-member")
    assert not problems, f"JavaScript errors or CSP violations on the page: {problems}"
