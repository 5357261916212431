"""`/` (issue #19 item 4): no 404 page; visitors go to the login page, signed-in users to
their workspaces (staff of no customer to the admin)."""

import pytest
from django.test import Client

from tests.factories import AdminFactory, MembershipFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's


def signed_in(user) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_visitor_is_sent_to_the_login_page():
    response = Client().get("/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/"
    assert Client().get("/", follow=True).status_code == 200


def test_member_is_sent_to_their_workspaces():
    client = signed_in(MembershipFactory().user)
    response = client.get("/")
    assert (response.status_code, response.url) == (302, "/workspaces/")
    page = client.get("/", follow=True)
    assert page.status_code == 200
    assert b'data-testid="nav-labs"' in page.content
    assert b'href="/api/docs/"' in page.content


def test_staff_of_no_customer_is_sent_to_the_admin():
    response = signed_in(AdminFactory()).get("/")
    assert (response.status_code, response.url) == (302, "/admin/")


def test_staff_who_is_a_member_gets_the_customer_pages_with_a_link_to_the_admin():
    membership = MembershipFactory(user=AdminFactory())
    client = signed_in(membership.user)
    assert client.get("/").url == "/workspaces/"
    assert b'href="/admin/"' in client.get("/workspaces/").content


def test_login_from_home_lands_on_the_workspaces():
    user = MembershipFactory().user
    response = Client().post(
        "/accounts/login/?next=/",
        {"username": user.username, "password": PASSWORD, "next": "/"},
        follow=True,
    )
    assert response.redirect_chain[-1] == ("/workspaces/", 302)
    assert response.status_code == 200
