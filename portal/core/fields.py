"""Model fields shared by every app."""

from typing import Any

from django.core import checks
from django.db import models

from portal.core import crypto


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; the database never sees the plaintext.

    Not searchable or orderable by its value: filtering on it is refused, because equal
    plaintexts give different tokens.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in ("isnull",):
            raise TypeError(f"EncryptedTextField does not support the {lookup_name!r} lookup")
        return super().get_lookup(lookup_name)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.db_index or self.unique:  # type: ignore[attr-defined]  # django-stubs lacks db_index
            errors.append(checks.Error("EncryptedTextField cannot be indexed or unique", obj=self))
        return errors
