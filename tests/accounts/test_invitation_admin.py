"""The admin lists invitations (never a token) and revokes pending ones."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Invitation
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _invitation(email, **fields):
    return Invitation.objects.create(
        customer=CustomerFactory(),
        email=email,
        token_hash=email.ljust(64, "0")[:64],
        expires_at=timezone.now() + timedelta(days=1),
        **fields,
    )


def test_admin_lists_and_revokes(admin_client):
    pending = _invitation("a@example.com")
    used = _invitation("b@example.com", status=InvitationStatus.ACCEPTED)
    page = admin_client.get(reverse("admin:accounts_invitation_changelist"))
    text = page.content.decode()
    assert page.status_code == 200 and "a@example.com" in text and "b@example.com" in text
    assert pending.token_hash not in text
    detail = admin_client.get(reverse("admin:accounts_invitation_change", args=[pending.pk]))
    assert detail.status_code == 200 and pending.token_hash not in detail.content.decode()
    response = admin_client.post(
        reverse("admin:accounts_invitation_changelist"),
        {"action": "revoke", "_selected_action": [pending.pk, used.pk]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Revoked 1 invitation" in text and "only a pending invitation" in text.lower()
    pending.refresh_from_db()
    used.refresh_from_db()
    assert pending.status == InvitationStatus.REVOKED and pending.revoked_at
    assert used.status == InvitationStatus.ACCEPTED
    assert admin_client.get(reverse("admin:accounts_invitation_add")).status_code == 403
