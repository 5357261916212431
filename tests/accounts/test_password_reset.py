"""Password reset by email (Django's views under /accounts/, the portal's templates): the
same answer whether or not an account exists, a link that works once, no inline code."""

import re

import pytest
from django.core import mail

from tests.core.test_csp import INLINE, STRICT, policy
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
RESET = "/accounts/password_reset/"


def _link(body: str) -> str:
    [link] = re.findall(r"https?://\S+/accounts/reset/\S+/", body)
    return link


def test_the_login_page_links_to_the_reset(client):
    page = client.get("/accounts/login/").content.decode()
    assert f'href="{RESET}"' in page and "Forgot your password?" in page


def test_a_user_resets_their_password_by_email(client):
    user = UserFactory(username="erin")
    response = client.post(RESET, {"email": "erin@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    [email] = mail.outbox
    assert email.to == ["erin@example.com"] and "erin" in email.body
    link = _link(email.body)
    assert link.startswith("http://testserver/accounts/reset/")
    form = client.get(link, follow=True)
    assert 'data-testid="password-reset-confirm-form"' in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-passphrase-7", "new_password2": "a-brand-new-passphrase-7"},
        follow=True,
    )
    assert 'data-testid="password-reset-complete"' in done.content.decode()
    user.refresh_from_db()
    assert user.check_password("a-brand-new-passphrase-7")
    again = client.get(link, follow=True).content.decode()  # the link works once
    assert 'data-testid="password-reset-invalid"' in again


def test_the_answer_does_not_tell_whether_an_account_exists(client):
    UserFactory(username="frank")
    known = client.post(RESET, {"email": "frank@example.com"}, follow=True)
    unknown = client.post(RESET, {"email": "nobody@example.com"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain
    assert known.content == unknown.content
    assert [m.to for m in mail.outbox] == [["frank@example.com"]]


def test_the_link_starts_with_portal_url_when_set(client, settings):
    settings.PORTAL_URL = "https://portal.example.com"
    UserFactory(username="gina")
    client.post(RESET, {"email": "gina@example.com"})
    assert _link(mail.outbox[-1].body).startswith("https://portal.example.com/accounts/reset/")


def test_a_failed_send_looks_the_same(client, settings):
    settings.EMAIL_BACKEND = "tests.accounts.test_password_reset.BrokenBackend"
    UserFactory(username="hal")
    response = client.post(RESET, {"email": "hal@example.com"})
    assert response.status_code == 302 and response["Location"].endswith("/done/")


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("SMTP is down")


@pytest.mark.parametrize(
    "path",
    [
        RESET,
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/bad-token/",
        "/accounts/reset/done/",
    ],
)
def test_the_reset_pages_have_the_strict_policy_and_no_inline_code(client, path):
    response = client.get(path, follow=True)
    assert response.status_code == 200
    directives = policy(response)
    for name, value in STRICT.items():
        assert directives[name] == value
    html = response.content.decode()
    for pattern in INLINE:
        assert not pattern.search(html), (path, pattern.pattern)
