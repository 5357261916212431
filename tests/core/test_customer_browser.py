"""The customer's path in a real browser, under the Content-Security-Policy: the landing page
shows usage against the plan and a failure in words (raw reason behind Details); an active
lab shows how to get in and is extended once; the login page leads to the password reset.
Chromium must report no CSP violation and no script error."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portal.accounts.choices import PlanTier
from portal.accounts.models import Plan
from portal.labs.choices import SessionStatus
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import Connection, NodePurpose
from portal.workspaces.choices import WorkspaceStatus
from portal.workspaces.models import Workspace
from tests.browser import PASSWORD, needs_chromium
from tests.factories import MembershipFactory, NodeFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]
RAW = "node ws-b-1 unreachable (5 attempts: Failed to connect to the host via ssh)"


@pytest.fixture
def customer_world(transactional_db):
    # A transactional test before this one may have flushed the seeded plans.
    team, _ = Plan.objects.get_or_create(
        tier=PlanTier.TEAM,
        defaults={
            "name": "Team",
            "workspace_limit": 5,
            "disk_quota_gb": 50,
            "cpu_limit": Decimal("2"),
            "memory_limit_mb": 4096,
        },
    )
    membership = MembershipFactory(user__username="dana", customer__plan=team)
    user, customer = membership.user, membership.customer
    node = NodeFactory(
        name="ws-b-1",
        purpose=NodePurpose.WORKSPACE_HOST,
        connection=Connection.LOCAL,
        credential=None,
    )
    Workspace.objects.create(
        customer=customer,
        owner=user,
        name="Broken one",
        slug="broken-one",
        node=node,
        linux_username="ws-broken-one",
        password="x" * 24,
        status=WorkspaceStatus.FAILED,
        status_reason=RAW,
        disk_quota_gb=customer.plan.disk_quota_gb,
        cpu_limit=customer.plan.cpu_limit,
        memory_limit_mb=customer.plan.memory_limit_mb,
    )
    server = NodeFactory(
        name="lab-b-1", purpose=NodePurpose.LAB_SERVER, connection=Connection.LOCAL, credential=None
    )
    lab = Lab.objects.create(
        name="k8s intro",
        server=server,
        provision_script_path="/p.sh",
        cleanup_script_path="/c.sh",
        user_extend_minutes=30,
        access_instructions="ssh {username}@lab.example.com\nkubectl -n {namespace} get pods",
    )
    session = LabSession.objects.create(
        user=user,
        lab=lab,
        namespace="user-9-abc",
        status=SessionStatus.ACTIVE,
        access_expiry=timezone.now() + timedelta(hours=1),
        token_hash="x",
    )
    return user, customer, session


def test_the_customer_path_in_the_browser(browser_page, customer_world):
    page, problems = browser_page
    user, customer, session = customer_world
    page.goto("/")
    page.get_by_test_id("forgot-password").click()
    expect(page.get_by_test_id("password-reset-form")).to_be_visible()
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/workspaces/$"))

    limit = customer.plan.workspace_limit
    expect(page.get_by_test_id("ws-plan-count")).to_have_text(f"1 of {limit} workspaces")
    card = page.get_by_test_id("ws-card")
    expect(card.get_by_test_id("ws-help")).to_contain_text("could not be reached")
    expect(card.get_by_test_id("ws-reason")).to_be_hidden()  # the raw reason: behind Details
    card.get_by_test_id("ws-reason-details").locator("summary").click()
    expect(card.get_by_test_id("ws-reason")).to_have_text(RAW)
    page.wait_for_timeout(2500)  # a poll of the live state keeps the words and the details
    expect(card.get_by_test_id("ws-help")).to_contain_text("could not be reached")
    expect(card.get_by_test_id("ws-reason")).to_be_visible()

    page.get_by_test_id("nav-labs").click()
    instructions = page.get_by_test_id("lab-instructions")
    expect(instructions).to_have_text("ssh dana@lab.example.com\nkubectl -n user-9-abc get pods")
    expiry = session.access_expiry
    page.get_by_test_id("lab-extend").click()
    expect(page.get_by_test_id("lab-extended")).to_be_visible()
    expect(page.get_by_test_id("lab-extend")).to_have_count(0)
    session.refresh_from_db()
    assert session.access_expiry == expiry + timedelta(minutes=30)
    assert not problems, problems
