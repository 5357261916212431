"""Per-customer isolation: the one mechanism every app uses for reads and writes.

A model owned by a customer declares the ORM path from itself to its ``Customer`` as
``customer_path`` (``"customer"``, ``"workspace__customer"``, or ``""`` for Customer itself)
and uses :class:`CustomerOwnedQuerySet`. Views then call ``visible_to(user)`` for reads and
``changeable_by(user)`` for writes: staff see everything, a member sees their customers'
objects, an owner may change them. Objects outside that set are "not found" (404), never
"forbidden", so their existence does not leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self, cast

from django.db import models
from rest_framework import permissions

if TYPE_CHECKING:  # DRF's views import the authentication, which imports this module
    from django.contrib.auth.models import AnonymousUser, User
    from rest_framework.generics import GenericAPIView
    from rest_framework.request import Request
    from rest_framework.views import APIView

    AnyUser = User | AnonymousUser | None
    _ViewBase = GenericAPIView
else:
    _ViewBase = object

OPERATORS_GROUP = "operators"


class MembershipRole(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"


def is_admin(user: AnyUser) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


_OPERATOR_FLAG = "_portal_is_operator"


def is_operator(user: AnyUser) -> bool:
    if not (user and user.is_authenticated):
        return False
    known = getattr(user, _OPERATOR_FLAG, None)
    if known is not None:  # read with the request's authentication
        return known
    return user.is_staff or user.groups.filter(name=OPERATORS_GROUP).exists()


def remember_operator(user: AnyUser, value: bool) -> None:
    """For the authentication backend that loaded ``user`` for this request."""
    setattr(user, _OPERATOR_FLAG, bool(value))


class CustomerOwnedQuerySet(models.QuerySet):
    def _membership_filter(
        self, user: AnyUser, roles: Iterable[str] | None = None
    ) -> dict[str, Any]:
        path = self.model.customer_path
        prefix = f"{path}__" if path else ""
        lookup: dict[str, Any] = {f"{prefix}memberships__user": user}
        if roles:
            lookup[f"{prefix}memberships__role__in"] = list(roles)
        return lookup

    def visible_to(self, user: AnyUser) -> Self:
        if not (user and user.is_authenticated):
            return self.none()
        if user.is_staff:
            return self
        return self.filter(**self._membership_filter(user))

    def changeable_by(self, user: AnyUser) -> Self:
        if not (user and user.is_authenticated):
            return self.none()
        if user.is_staff:
            return self
        return self.filter(**self._membership_filter(user, roles=[MembershipRole.OWNER]))


class CustomerScopedQuerysetMixin(_ViewBase):
    """For DRF views: the queryset is always narrowed to what the user may see."""

    def get_queryset(self) -> CustomerOwnedQuerySet:
        return cast(CustomerOwnedQuerySet, super().get_queryset()).visible_to(self.request.user)


class IsAdmin(permissions.BasePermission):
    message = "Only portal admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_admin(request.user)


class IsOperator(permissions.BasePermission):
    message = "Only operators and admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_operator(request.user)


class ReadOnlyOrAdmin(permissions.BasePermission):
    message = "Only portal admins may change this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_admin(request.user)


class CustomerObjectPermission(permissions.BasePermission):
    """Members read their customers' objects; owners and admins change them."""

    message = "Only an owner of this customer or an admin may change this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True  # the queryset already limited reads to visible objects
        manager = type(obj)._default_manager
        return manager.filter(pk=obj.pk).changeable_by(request.user).exists()
