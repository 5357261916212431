"""A notification channel's settings, checked apart from the models (models.py calls it
from NotificationChannel.clean; notify.py imports the models, so this module must not)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from portal.monitoring.choices import ChannelKind


def channel_errors(kind: str, emails: Any, url: str) -> dict[str, str]:
    """What is wrong with a channel's settings, by field (empty: nothing)."""
    if kind == ChannelKind.EMAIL:
        if not isinstance(emails, list) or not emails:
            return {"emails": 'A list of addresses, e.g. ["ops@example.com"].'}
        check = EmailValidator()
        for address in emails:
            try:
                check(address)
            except ValidationError:
                return {"emails": f"Not an email address: {address!r}."}
    elif kind == ChannelKind.WEBHOOK:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            return {"url": "An http(s) URL."}
    return {}
