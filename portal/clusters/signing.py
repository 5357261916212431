"""Registration credentials of one node in one run: a one-time token and an HMAC secret.

The token is a bearer value the post-install script sends (``X-Portal-Token``); the portal
keeps only its SHA-256. The secret signs each request::

    X-Portal-Signature = hex(HMAC-SHA256(key = bytes.fromhex(secret),
                                         msg = timestamp + "\\n" + nonce + "\\n" + body))

with ``timestamp`` the Unix time in seconds (``X-Portal-Timestamp``) and ``nonce`` 16-64
characters of ``[A-Za-z0-9_-]`` (``X-Portal-Nonce``), the body as sent, byte for byte. The
secret is stored encrypted (the portal must verify with it) and travels only inside the
post-install script, which is issued over the same channel as the token.
"""

import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32
SECRET_BYTES = 32
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
SIGNATURE = re.compile(r"^[0-9a-f]{64}\Z")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, timestamp: str, nonce: str, body: bytes, given: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, nonce, body), given.lower())
