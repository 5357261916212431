"""SSH key handling: validate a private key and describe it without revealing it."""

import base64
import hashlib

from cryptography.hazmat.primitives import serialization


class InvalidKey(ValueError):
    pass


def load_private_key(text: str):
    data = text.strip().encode() + b"\n"
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key)
    for loader in loaders:
        try:
            return loader(data, password=None)
        except (ValueError, TypeError):
            continue
    raise InvalidKey(
        "not an unencrypted OpenSSH or PEM private key (passphrase-protected keys are "
        "not supported; the portal stores keys encrypted itself)"
    )


def fingerprint(text: str) -> str:
    """``SHA256:…`` like ``ssh-keygen -lf``: safe to show, identifies the key."""
    public = (
        load_private_key(text)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    blob = base64.b64decode(public.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def public_key(text: str) -> str:
    return (
        load_private_key(text)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
