"""Writes to customers and memberships: ``check_*`` validates, ``do_*`` applies."""

from django.contrib.auth import get_user_model
from django.db import transaction

from portal.accounts.models import Customer, Membership, Plan
from portal.core.errors import Conflict, PortalError
from portal.core.tenancy import MembershipRole


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_customer_email_free(email: str, exclude_pk=None) -> None:
    clash = Customer.objects.filter(email=normalise_email(email))
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise PortalError("A customer with this email already exists.", field="email",
                          code="unique")


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
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean()
    customer.save()
    return customer


def check_can_remove_member(membership: Membership) -> None:
    if membership.role != MembershipRole.OWNER:
        return
    owners = Membership.objects.filter(customer=membership.customer, role=MembershipRole.OWNER)
    if owners.count() <= 1:
        raise Conflict("A customer must keep at least one owner.", field="role")


@transaction.atomic
def do_add_member(customer: Customer, user, role: str = MembershipRole.MEMBER) -> Membership:
    if Membership.objects.filter(customer=customer, user=user).exists():
        raise Conflict(f"{user} is already a member of {customer}.", field="user")
    return Membership.objects.create(customer=customer, user=user, role=role)


@transaction.atomic
def do_remove_member(membership: Membership) -> None:
    check_can_remove_member(membership)
    membership.delete()


def do_create_user(username: str, email: str = "", password: str | None = None, **extra):
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise Conflict(f"User {username!r} already exists.", field="username")
    return User.objects.create_user(username=username, email=email, password=password, **extra)
