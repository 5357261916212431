from rest_framework import serializers


class LowercaseEmailField(serializers.EmailField):
    """Emails compare case-insensitively; normalise before the unique validators run."""

    def to_internal_value(self, data):
        return super().to_internal_value(data).strip().lower()
