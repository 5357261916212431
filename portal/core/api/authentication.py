"""Token authentication that also answers "is this user an operator?" in the same query.

Most API writes ask :func:`portal.core.tenancy.is_operator`; reading the operators-group
membership with the token saves one query per request. The answer is kept on this request's
user object only, never across requests.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from portal.core.tenancy import OPERATORS_GROUP, remember_operator


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        memberships = get_user_model().groups.through.objects.filter(
            user_id=OuterRef("user_id"), group__name=OPERATORS_GROUP
        )
        token_model: Any = self.get_model()
        try:
            token = (
                token_model.objects.select_related("user")
                .annotate(in_operators=Exists(memberships))
                .get(key=key)
            )
        except token_model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        remember_operator(token.user, token.user.is_staff or token.in_operators)
        return token.user, token
