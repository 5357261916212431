"""Field encryption with MultiFernet: the first key encrypts, every key decrypts."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def cipher() -> MultiFernet:
    # Keyed by the current settings so tests that override the keys get a new cipher.
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise DecryptionError(
            "stored value cannot be decrypted with FIELD_ENCRYPTION_KEY "
            "(was a key removed before `manage.py rotate_field_keys` ran?)"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a token with the primary (first) key."""
    return cipher().rotate(token.encode("ascii")).decode("ascii")
