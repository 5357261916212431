"""The names and addresses the clusters app takes: Proxmox cluster names and MAC addresses."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

# Proxmox's rule for `pvecm create NAME`: at most 15 characters, letters, digits and '-'
# (corosync's cluster_name; longer names break the totem configuration).
CLUSTER_NAME_MAX = 15
cluster_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9-]{0,14}\Z",
    "Use 1-15 letters, digits or '-', starting with a letter or digit (Proxmox's rule).",
    code="invalid_cluster_name",
)

_HEX = re.compile(r"^[0-9a-f]{12}\Z")
_SEPARATED = re.compile(r"^[0-9a-f]{2}([:-])(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}\Z")
_CISCO = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\Z")
MAC_MESSAGE = "Not a MAC address: give six hex bytes, e.g. 52:54:00:12:34:56."


def normalise_mac(value: object) -> str:
    """``52:54:00:AB:CD:EF``, ``52-54-00-ab-cd-ef``, ``5254.00ab.cdef`` and ``525400abcdef``
    all become ``52:54:00:ab:cd:ef``; anything else raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(MAC_MESSAGE)
    text = value.strip().lower()
    if _SEPARATED.match(text) or _CISCO.match(text):
        text = text.replace(":", "").replace("-", "").replace(".", "")
    if not _HEX.match(text):
        raise ValueError(MAC_MESSAGE)
    return ":".join(text[i : i + 2] for i in range(0, 12, 2))


def validate_mac(value: object) -> None:
    """Any form normalise_mac takes (ClusterNode.save stores it normalised)."""
    try:
        normalise_mac(value)
    except ValueError:
        raise ValidationError(MAC_MESSAGE, code="invalid_mac") from None


# --- the registration body (the old system's fields) ------------------------------------------

REGISTRATION_FIELDS = ("mac", "hostname", "ip", "link0", "status")
REGISTRATION_STATUS = "post-install-complete"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)


class RegistrationInvalid(ValueError):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def clean_registration(data: object) -> dict[str, str]:
    """``{"mac", "hostname", "ip", "link0", "status": "post-install-complete"}`` and the
    optional ``host_keys``, each checked (RegistrationInvalid names the field); the MAC
    normalised, other keys dropped."""
    from ipaddress import ip_address

    if not isinstance(data, dict):
        raise RegistrationInvalid(None, "The body must be a JSON object.")
    missing = [name for name in REGISTRATION_FIELDS if name not in data]
    if missing:
        raise RegistrationInvalid(missing[0], "This field is required.")
    bad = [name for name in REGISTRATION_FIELDS if not isinstance(data[name], str)]
    if bad:
        raise RegistrationInvalid(bad[0], "Not a string.")
    if data["status"] != REGISTRATION_STATUS:
        raise RegistrationInvalid("status", f"Expected {REGISTRATION_STATUS!r}.")
    try:
        mac = normalise_mac(data["mac"])
    except ValueError as exc:
        raise RegistrationInvalid("mac", str(exc)) from None
    if not _HOSTNAME.match(data["hostname"]):
        raise RegistrationInvalid("hostname", "Not a hostname.")
    cleaned = {"mac": mac, "hostname": data["hostname"]}
    for name in ("ip", "link0"):
        try:
            cleaned[name] = str(ip_address(data[name]))
        except ValueError:
            raise RegistrationInvalid(name, "Not an IP address.") from None
    cleaned["status"] = REGISTRATION_STATUS
    if data.get("host_keys") not in (None, ""):
        cleaned["host_keys"] = _host_keys(data["host_keys"])
    return cleaned


MAX_HOST_KEYS_TEXT = 8192


def _host_keys(value: object) -> str:
    """Optional: the node's new SSH host keys (``/etc/ssh/ssh_host_*_key.pub`` lines), one
    text; the portal pins them (a reinstall made new ones)."""
    from portal.nodes import hostkeys

    if not isinstance(value, str):
        raise RegistrationInvalid("host_keys", "Not a string.")
    if len(value) > MAX_HOST_KEYS_TEXT:
        raise RegistrationInvalid("host_keys", f"At most {MAX_HOST_KEYS_TEXT} characters.")
    try:
        keys = hostkeys.parse(value)
    except hostkeys.HostKeyError as exc:
        raise RegistrationInvalid("host_keys", str(exc)) from None
    if not keys:
        raise RegistrationInvalid("host_keys", "No host key in it.")
    return "\n".join(sorted(key.line for key in keys))
