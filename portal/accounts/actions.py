"""Writes to customers, memberships and invitations: ``check_*`` validates, ``do_*`` applies."""

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.accounts import selectors
from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Customer, Invitation, Membership, Plan
from portal.core.errors import Conflict, PortalError
from portal.core.services import editable_fields, model_update
from portal.core.tenancy import MembershipRole

logger = logging.getLogger(__name__)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_customer_email_free(email: str, exclude_pk=None) -> None:
    if selectors.customer_email_taken(normalise_email(email), exclude_pk=exclude_pk):
        raise PortalError(
            "A customer with this email already exists.", field="email", code="unique"
        )


@transaction.atomic
def do_create_customer(*, name: str, email: str, plan: Plan, owner=None, **fields) -> Customer:
    check_customer_email_free(email)
    customer = Customer(name=name, email=normalise_email(email), plan=plan, **fields)
    customer.full_clean()
    customer.save()
    if owner is not None:
        Membership.objects.create(customer=customer, user=owner, role=MembershipRole.OWNER)
    return customer


@transaction.atomic
def do_update_customer(customer: Customer, **fields) -> Customer:
    if "email" in fields:
        check_customer_email_free(fields["email"], exclude_pk=customer.pk)
        fields["email"] = normalise_email(fields["email"])
    return model_update(customer, fields, editable_fields(Customer))[0]


def check_can_remove_member(membership: Membership) -> None:
    if membership.role != MembershipRole.OWNER:
        return
    if selectors.owner_count(membership.customer) <= 1:
        raise Conflict("A customer must keep at least one owner.", field="role")


@transaction.atomic
def do_add_member(customer: Customer, user, role: str = MembershipRole.MEMBER) -> Membership:
    if selectors.is_member(customer, user):
        raise Conflict(f"{user} is already a member of {customer}.", field="user")
    return Membership.objects.create(customer=customer, user=user, role=role)


@transaction.atomic
def do_remove_member(membership: Membership) -> None:
    check_can_remove_member(membership)
    membership.delete()


def do_create_user(username: str, email: str = "", password: str | None = None, **extra):
    if selectors.username_taken(username):
        raise Conflict(f"User {username!r} already exists.", field="username")
    return get_user_model().objects.create_user(
        username=username, email=email, password=password, **extra
    )


# --- invitations --------------------------------------------------------------------------
#
# An owner (or an admin) invites an email address; the email holds a link with a random
# token, of which only the SHA-256 is stored. Whoever opens the link accepts: signed in, as
# themselves; otherwise by creating an account. Nothing here tells the inviter whether the
# address has an account: the invitation, the email and the answers are the same either way.

INVALID_INVITATION = (
    "This invitation is not valid: it may have expired, been revoked or "
    "already been used. Ask for a new one."
)
USERNAME_UNAVAILABLE = "This username is not available; choose another."


class EmailUnavailable(PortalError):
    status_code = 503
    code = "email_unavailable"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def invitation_link(token: str, base_url: str = "") -> str:
    """The accept page's absolute URL: PORTAL_URL when set, else ``base_url`` (the request's
    scheme and host)."""
    base = settings.PORTAL_URL or base_url.rstrip("/")
    return f"{base}{reverse('invitations:accept', args=[token])}"


def check_can_invite(user, customer_id: int) -> Customer:
    """The customer ``user`` may invite to: one they own (any, for admins). Another
    customer's id and an unknown id get the same answer."""
    customer = selectors.owned_customer(user, customer_id)
    if customer is None:
        raise PortalError(
            f"No customer {customer_id} that you own.", field="customer", code="does_not_exist"
        )
    return customer


@transaction.atomic
def do_invite(
    customer: Customer,
    email: str,
    role: str = MembershipRole.MEMBER,
    *,
    by=None,
    base_url: str = "",
) -> Invitation:
    """Create the invitation and send its email (both or neither: a failed send rolls back).

    A pending invitation of the same address to the same customer is revoked: the newest
    link is the one that works ("resend").
    """
    if role not in MembershipRole.values:
        raise PortalError(f"Unknown role {role!r}.", field="role", code="invalid_choice")
    email = normalise_email(email)
    now = timezone.now()
    Invitation.objects.filter(
        customer=customer, email=email, status=InvitationStatus.PENDING
    ).update(status=InvitationStatus.REVOKED, revoked_at=now, updated_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        customer=customer,
        email=email,
        role=role,
        token_hash=hash_token(token),
        expires_at=now + timedelta(days=settings.INVITATION_DAYS),
        invited_by=by,
    )
    _send_invitation(invitation, invitation_link(token, base_url))
    return invitation


def _send_invitation(invitation: Invitation, link: str) -> None:
    inviter = invitation.invited_by
    context = {
        "invitation": invitation,
        "customer": invitation.customer,
        "link": link,
        "inviter": (inviter.get_full_name() or inviter.username) if inviter else None,
        "days": settings.INVITATION_DAYS,
    }
    name = " ".join(invitation.customer.name.split())  # a header: no line breaks
    subject = f"You are invited to join {name} on the provisioning portal"
    body = render_to_string("accounts/invitation_email.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])
    except Exception as exc:  # SMTP down, refused, timed out: say so, keep nothing
        logger.warning("invitation email to customer %s failed: %s", invitation.customer_id, exc)
        raise EmailUnavailable(
            "The invitation email could not be sent; nothing was saved. Try again later."
        ) from exc


def find_invitation(token: str) -> Invitation:
    """The pending, unexpired invitation of ``token``, or the one error for every other case
    (unknown, expired, revoked, accepted). An expired one is marked so."""
    invitation = selectors.invitation_by_token_hash(hash_token(token or ""))
    if invitation is None or invitation.current_status != InvitationStatus.PENDING:
        if invitation is not None and invitation.current_status == InvitationStatus.EXPIRED:
            Invitation.objects.filter(pk=invitation.pk, status=InvitationStatus.PENDING).update(
                status=InvitationStatus.EXPIRED, updated_at=timezone.now()
            )
        raise PortalError(INVALID_INVITATION, field="token", code="invalid_token")
    return invitation


def check_new_account(username: str, password: str, email: str) -> None:
    """A username and password for an invited person's new account (400s naming the field).

    Only a holder of a valid invitation gets this far, so only they learn that a username
    is taken; an inviter never does.
    """
    User = get_user_model()
    if not username:
        raise PortalError(
            "Choose a username to create your account.", field="username", code="required"
        )
    if not password:
        raise PortalError(
            "Choose a password to create your account.", field="password", code="required"
        )
    field: Any = User._meta.get_field(User.USERNAME_FIELD)  # a model field: has clean()
    try:
        field.clean(username, None)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="username", code="invalid") from None
    if selectors.username_taken(username, ignore_case=True):
        raise PortalError(USERNAME_UNAVAILABLE, field="username", code="unavailable")
    try:
        validate_password(password, User(username=username, email=email))
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="password", code="invalid") from None


def do_accept_invitation(
    token: str, user=None, *, username: str = "", password: str = ""
) -> Membership:
    """Accept as ``user`` (signed in), or create the account ``username``/``password`` and
    accept as it. Already a member: the membership stays, raised to owner if invited so."""
    invitation = find_invitation(token)
    if user is None or not user.is_authenticated:
        check_new_account(username, password, invitation.email)
    with transaction.atomic():
        if user is None or not user.is_authenticated:
            user = get_user_model().objects.create_user(
                username=username, email=invitation.email, password=password
            )
        now = timezone.now()
        won = Invitation.objects.filter(
            pk=invitation.pk,
            status=InvitationStatus.PENDING,
            expires_at__gt=now,
        ).update(
            status=InvitationStatus.ACCEPTED, accepted_by=user, accepted_at=now, updated_at=now
        )
        if not won:  # accepted or revoked a moment ago
            raise PortalError(INVALID_INVITATION, field="token", code="invalid_token")
        membership = (
            Membership.objects.select_for_update()
            .filter(customer=invitation.customer, user=user)
            .first()
        )
        if membership is None:
            membership = Membership.objects.create(
                customer=invitation.customer, user=user, role=invitation.role
            )
        elif invitation.role == MembershipRole.OWNER and membership.role != MembershipRole.OWNER:
            membership.role = MembershipRole.OWNER
            membership.save(update_fields=["role", "updated_at"])
    return membership


def check_can_revoke(invitation: Invitation) -> None:
    status = invitation.current_status
    if status != InvitationStatus.PENDING:
        raise Conflict(
            f"Only a pending invitation can be revoked; this one is {status}.",
            field="status",
            code="not_pending",
        )


@transaction.atomic
def do_revoke_invitation(invitation: Invitation, *, by=None) -> Invitation:
    check_can_revoke(invitation)
    now = timezone.now()
    won = Invitation.objects.filter(
        pk=invitation.pk,
        status=InvitationStatus.PENDING,
        expires_at__gt=now,
    ).update(status=InvitationStatus.REVOKED, revoked_at=now, updated_at=now)
    invitation.refresh_from_db()
    if not won:
        check_can_revoke(invitation)  # it changed meanwhile: say what it is now
    logger.info("invitation %s revoked by %s", invitation.pk, getattr(by, "pk", None))
    return invitation
