"""Reads about customers, plans, memberships and invitations (views, admin, actions)."""

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Customer, Invitation, Membership
from portal.core.tenancy import MembershipRole

CUSTOMERS_TO_CHOOSE = 500  # the workspace dialog's customer list


def customers_with_roles():
    """Customers with their plan and memberships (only what a member's role needs)."""
    return Customer.objects.select_related("plan").prefetch_related(
        Prefetch(
            "memberships", queryset=Membership.objects.only("id", "user_id", "role", "customer_id")
        )
    )


def customers_to_choose(user) -> list[Customer]:
    """The customers ``user`` may pick from (every customer for admins), by name."""
    return list(Customer.objects.visible_to(user).order_by("name")[:CUSTOMERS_TO_CHOOSE])


def memberships_of(user):
    """The user's memberships with their customers, by customer name (the Members page)."""
    return (
        Membership.objects.filter(user=user).select_related("customer").order_by("customer__name")
    )


def members_of(customer: Customer):
    """The customer's memberships with their users, owners first, then by username."""
    return customer.memberships.select_related("user").order_by("-role", "user__username")


def pending_invitations_of(customer: Customer):
    """The customer's invitations that can still be accepted, by email."""
    return (
        Invitation.objects.live()
        .filter(customer=customer)
        .select_related("invited_by")
        .order_by("email")
    )


def with_customer_count(plans):
    """Plans annotated with ``customer_count``."""
    return plans.annotate(customer_count=Count("customers"))


def with_member_count(customers):
    """Customers annotated with ``member_count``."""
    return customers.annotate(member_count=Count("memberships"))


def customer_email_taken(email: str, exclude_pk=None) -> bool:
    clash = Customer.objects.filter(email=email)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    return clash.exists()


def owned_customer(user, customer_id) -> Customer | None:
    """Customer ``customer_id`` if ``user`` owns it (any customer, for admins)."""
    return Customer.objects.changeable_by(user).filter(pk=customer_id).first()


def owner_count(customer: Customer) -> int:
    return Membership.objects.filter(customer=customer, role=MembershipRole.OWNER).count()


def is_member(customer: Customer, user) -> bool:
    return Membership.objects.filter(customer=customer, user=user).exists()


def username_taken(username: str, *, ignore_case: bool = False) -> bool:
    User = get_user_model()
    lookup = f"{User.USERNAME_FIELD}__iexact" if ignore_case else User.USERNAME_FIELD
    return User.objects.filter(**{lookup: username}).exists()


def invitation_by_token_hash(token_hash: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("customer", "invited_by")
        .filter(token_hash=token_hash)
        .first()
    )


def invitations_in_status(invitations, status: str, now=None):
    """Invitations whose current status is ``status``: a pending one past its expiry counts
    as expired (``Invitation.current_status``)."""
    now = now or timezone.now()
    if status == InvitationStatus.PENDING:
        return invitations.live(now)
    if status == InvitationStatus.EXPIRED:
        return invitations.filter(
            Q(status=InvitationStatus.EXPIRED)
            | Q(status=InvitationStatus.PENDING, expires_at__lte=now)
        )
    return invitations.filter(status=status)
