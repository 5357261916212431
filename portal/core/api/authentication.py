"""Token authentication that also answers "is this user an operator?" in the same query.

Most API writes ask :func:`portal.core.tenancy.is_operator`; reading the operators-group
membership with the token saves one query per request. The answer is kept on this request's
user object only, never across requests.

Every API request (a customer's, an agent's, a script's) authenticates, so the query is
written once, prepared on PostgreSQL (``portal/core/db.py``) and its row loaded as the ORM
loads it: the ORM built the same query (``select_related`` and an ``Exists``) for about a
millisecond of CPU per request, more than the rest of a simple request's database work.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from portal.core.db import fetch_prepared, model_from_row
from portal.core.tenancy import OPERATORS_GROUP, remember_operator


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if "\x00" in key:  # PostgreSQL text cannot hold it: no token has one
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token_model: Any = self.get_model()
        db = connections[router.db_for_read(token_model)]
        row = fetch_prepared(db, token_and_user_sql(db, token_model), [OPERATORS_GROUP, key])
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token, user, in_operators = _loaded(db, token_model, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        remember_operator(user, user.is_staff or in_operators)
        return user, token


def token_and_user_sql(db: BaseDatabaseWrapper, token_model: Any) -> str:
    """The token by its key, its user, and whether the user is in the operators group."""
    cached = _SQL.get((db.alias, token_model))
    if cached is not None:
        return cached

    def quote(name: Any) -> str:
        return db.ops.quote_name(name)

    user_model = get_user_model()
    memberships: Any = user_model.groups.through._meta
    token_user: Any = token_model._meta.get_field("user")
    member_user, member_group = (memberships.get_field(name).column for name in ("user", "group"))
    user_pk = quote(user_model._meta.pk.column)
    columns = [f"t.{quote(f.column)}" for f in token_model._meta.concrete_fields] + [
        f"u.{quote(f.column)}" for f in user_model._meta.concrete_fields
    ]
    sql = _SQL[(db.alias, token_model)] = (
        f"SELECT {', '.join(columns)}, EXISTS ("  # noqa: S608 - models' tables and columns
        f"SELECT 1 FROM {quote(memberships.db_table)} m "
        f"JOIN {quote(Group._meta.db_table)} g "
        f"ON g.{quote(Group._meta.pk.column)} = m.{quote(member_group)} "
        f"WHERE m.{quote(member_user)} = u.{user_pk} "
        "AND g.name = %s) "
        f"FROM {quote(token_model._meta.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u "
        f"ON u.{user_pk} = t.{quote(token_user.column)} "
        f"WHERE t.{quote(token_model._meta.get_field('key').column)} = %s"
    )
    return sql


_SQL: dict[tuple[str, Any], str] = {}


def _loaded(db: BaseDatabaseWrapper, token_model: Any, row: tuple) -> tuple[Any, Any, bool]:
    token_fields = token_model._meta.concrete_fields
    user_model = get_user_model()
    width = len(token_fields)
    token = model_from_row(db, token_model, token_fields, row[:width])
    user = model_from_row(db, user_model, user_model._meta.concrete_fields, row[width:-1])
    token.user = user  # as select_related leaves it
    return token, user, bool(row[-1])
