from typing import Any

from django.db import models
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that takes strings only: DRF's turns ``123`` or ``1.5`` into ``"123"``,
    so ``{"name": 123}`` was stored as a name. Not a string: 400 "Not a valid string."."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LowercaseEmailField(serializers.EmailField):
    """Emails compare case-insensitively; normalise before the unique validators run."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data).strip().lower()


class StrictStringsMixin:
    """For ModelSerializers: the model's text fields take strings only (StrictCharField)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
