"""Names a workspace gets: its display name, subdomain slug, Linux user name and password.

A display name is text the customer chose: any printable Unicode, but never control, format
(bidi overrides, zero-width) or surrogate characters. Everything that reaches a machine or a
hostname is derived from it in a closed ASCII alphabet and length-limited with a hash suffix,
so long names stay distinct.
"""

import hashlib
import re
import secrets
import string
import unicodedata

from portal.core.errors import PortalError
from portal.workspaces.models import slug_validator

NAME_MAX = 100
SLUG_MAX = 40
USERNAME_MAX = 32
USERNAME_PREFIX = "ws-"
PASSWORD_LENGTH = 24
PASSWORD_ALPHABET = string.ascii_letters + string.digits
# Subdomains the portal itself may need; never a workspace's.
RESERVED_SLUGS = frozenset({"www", "api", "admin", "portal", "traefik", "mail", "static"})
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def check_name(name) -> str:
    if not isinstance(name, str):
        raise PortalError("The name must be text.", field="name")
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        raise PortalError("The name may not be blank.", field="name")
    if len(name) > NAME_MAX:
        raise PortalError(
            f"The name may have at most {NAME_MAX} characters (it has {len(name)}).", field="name"
        )
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")), None)
    if bad is not None:
        raise PortalError(
            f"The name contains a control or invisible character (U+{ord(bad):04X}).", field="name"
        )
    return name


def _hash_suffix(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def shorten(base: str, limit: int, source: str) -> str:
    """``base`` when it fits, else its start plus a hash of ``source`` (distinct names stay
    distinct)."""
    if len(base) <= limit:
        return base
    suffix = _hash_suffix(source)
    return f"{base[: limit - len(suffix) - 1].rstrip('-_')}-{suffix}"


def slug_from_name(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    base = _NOT_SLUG.sub("-", ascii_name).strip("-") or f"ws-{_hash_suffix(name)}"
    if not base[0].isalpha():
        base = f"ws-{base}"
    return shorten(base, SLUG_MAX, name).strip("-")


def check_slug(slug) -> str:
    if not isinstance(slug, str):
        raise PortalError("The subdomain must be text.", field="slug")
    slug = slug.strip().lower()
    try:
        slug_validator(slug)
    except Exception:
        raise PortalError(str(slug_validator.message), field="slug", code="invalid_slug") from None
    if slug in RESERVED_SLUGS:
        raise PortalError(f"The subdomain {slug!r} is reserved.", field="slug", code="reserved")
    return slug


def username_for(slug: str, taken) -> str:
    """A Linux user name for the slug, unique among ``taken`` (a set of names)."""
    base = shorten(f"{USERNAME_PREFIX}{slug}", USERNAME_MAX, slug).replace("--", "-")
    candidate, counter = base, 1
    while candidate in taken:
        counter += 1
        tail = f"-{counter}"
        candidate = base[: USERNAME_MAX - len(tail)] + tail
    return candidate


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
