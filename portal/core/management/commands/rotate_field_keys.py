"""Re-encrypt every encrypted field with the newest FIELD_ENCRYPTION_KEY.

Rotation: prepend a new key to FIELD_ENCRYPTION_KEY, restart, run this command, then drop
the old key.
"""

from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Model

from portal.core.fields import EncryptedTextField


def encrypted_fields() -> Iterator[tuple[type[Model], EncryptedTextField]]:
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the primary (first) FIELD_ENCRYPTION_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        for model, field in encrypted_fields():
            count = self._rotate(model, field)
            self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")

    @transaction.atomic
    def _rotate(self, model: type[Model], field: EncryptedTextField) -> int:
        # Reading decrypts with any configured key; writing encrypts with the first one.
        # update() bypasses save() hooks, so nothing else about the row changes.
        manager = model._base_manager
        count = 0
        for pk, plaintext in manager.select_for_update().values_list("pk", field.attname):
            if plaintext:
                manager.filter(pk=pk).update(**{field.attname: plaintext})
                count += 1
        return count
