"""``redfish``: boot source override + ComputerSystem.Reset over HTTPS (DMTF Redfish).

reimage: find the system (the only member of ``/redfish/v1/Systems``, or option
``system_id``), PATCH ``Boot: {BootSourceOverrideTarget: Pxe, BootSourceOverrideEnabled:
Once}``, then POST ``ComputerSystem.Reset`` with ``ForceRestart`` (option ``reset_type``),
or ``On`` when the system is off. disable_network_boot: ``BootSourceOverrideEnabled:
Disabled``. HTTP basic authentication; a BMC's error (``@Message.ExtendedInfo``) becomes the
PowerError's reason.

Options: ``verify_tls`` (true), ``ca_file`` (a PEM bundle for the BMC's certificate),
``system_id``, ``reset_type`` (ForceRestart | PowerCycle | GracefulRestart), ``timeout``
(30 s per request). The address is a host[:port], or a URL with its scheme.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any, ClassVar
from urllib.parse import quote

from portal.clusters.power import POWER_OFF, POWER_ON, PowerError, PowerTarget
from portal.clusters.power import options as opt
from portal.clusters.power.process import mask

OPTIONS = ("verify_tls", "ca_file", "system_id", "reset_type", "timeout")
RESET_TYPES = ("ForceRestart", "PowerCycle", "GracefulRestart")
SYSTEMS = "/redfish/v1/Systems"
ON_STATES = ("On", "PoweringOn", "Paused")


class RedfishDriver:
    name: ClassVar[str] = "redfish"

    def check_options(self, options: Any) -> dict[str, Any]:
        options = opt.as_mapping(options)
        opt.refuse_unknown(options, OPTIONS)
        checked = {
            "verify_tls": opt.boolean(options, "verify_tls", True),
            "ca_file": opt.text(options, "ca_file"),
            "system_id": opt.text(options, "system_id"),
            "reset_type": opt.choice(options, "reset_type", "ForceRestart", RESET_TYPES),
            "timeout": opt.integer(options, "timeout", 30, 1, 600),
        }
        if "/" in checked["system_id"]:
            raise ValueError("power option 'system_id' must be a system's id, not a path")
        return checked

    def reimage(self, target: PowerTarget) -> None:
        session = _Session(target, opt.for_target(self.check_options, target))
        system = session.system()
        session.patch(
            system.path,
            {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}},
            system.etag,
        )
        on = system.body.get("PowerState") in ON_STATES
        reset_type = session.options["reset_type"] if on else "On"
        system.check_reset_type(reset_type)
        session.post(system.reset_target, {"ResetType": reset_type})

    def disable_network_boot(self, target: PowerTarget) -> None:
        session = _Session(target, opt.for_target(self.check_options, target))
        system = session.system()
        # Target None ("boot from the normal boot device") too: some BMCs refuse a Boot
        # without a target (sushy-tools' emulator among them).
        off = {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}
        session.patch(system.path, {"Boot": off}, system.etag)

    def power_state(self, target: PowerTarget) -> str:
        system = _Session(target, opt.for_target(self.check_options, target)).system()
        state = system.body.get("PowerState")
        if state is None:
            raise PowerError(f"{target.node}: the Redfish system {system.path} has no PowerState")
        return POWER_ON if state in ON_STATES else POWER_OFF


class _System:
    def __init__(self, node: str, path: str, body: dict[str, Any], etag: str | None):
        self.node, self.path, self.body, self.etag = node, path, body, etag

    @property
    def reset_target(self) -> str:
        action = self.body.get("Actions", {}).get("#ComputerSystem.Reset", {})
        return str(action.get("target") or f"{self.path}/Actions/ComputerSystem.Reset")

    def check_reset_type(self, reset_type: str) -> None:
        action = self.body.get("Actions", {}).get("#ComputerSystem.Reset", {})
        allowed = action.get("ResetType@Redfish.AllowableValues")
        if allowed and reset_type not in allowed:
            raise PowerError(
                f"{self.node}: the BMC does not offer reset {reset_type} for {self.path} "
                f"(it offers {', '.join(allowed)}; option reset_type)"
            )


class _Session:
    def __init__(self, target: PowerTarget, options: dict[str, Any]):
        if not target.address:
            raise PowerError(f"{target.node}: no BMC address for the redfish driver")
        self.target, self.options = target, options
        address = target.address.rstrip("/")
        self.base = address if "://" in address else f"https://{address}"
        # Straight to the BMC: a worker's HTTP(S)_PROXY is for the outside world, not for
        # the BMC network.
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self._tls_context()),
        )

    def system(self) -> _System:
        if self.options["system_id"]:
            path = f"{SYSTEMS}/{quote(self.options['system_id'], safe='')}"
        else:
            path = self._only_system()
        body, headers = self.request("GET", path)
        # Some BMCs (iLO) give the ETag in the body only.
        etag = headers.get("ETag") or body.get("@odata.etag")
        return _System(self.target.node, path, body, str(etag) if etag else None)

    def _only_system(self) -> str:
        members = self.request("GET", SYSTEMS)[0].get("Members", [])
        paths = [m.get("@odata.id", "") for m in members if isinstance(m, dict)]
        if len(paths) != 1 or not paths[0]:
            raise PowerError(
                f"{self.target.node}: the BMC at {self.base} has {len(paths)} systems "
                f"({', '.join(paths) or 'none'}); set the power option system_id"
            )
        return str(paths[0])

    def patch(self, path: str, body: dict[str, Any], etag: str | None) -> None:
        self.request("PATCH", path, body, {"If-Match": etag} if etag else {})

    def post(self, path: str, body: dict[str, Any]) -> None:
        self.request("POST", path, body)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers=None
    ) -> tuple[dict[str, Any], Any]:
        url = self.base + path
        request = urllib.request.Request(  # noqa: S310 - the admin's BMC URL (https by default)
            url,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "OData-Version": "4.0",
                "Authorization": self._basic_auth(),
                **(headers or {}),
            },
        )
        what = f"{self.target.node}: Redfish {method} {url}"
        try:
            with self.opener.open(request, timeout=self.options["timeout"]) as r:
                return _json(r.read()), r.headers
        except urllib.error.HTTPError as exc:
            raise PowerError(self._mask(_http_failure(what, exc))) from None
        except (urllib.error.URLError, OSError) as exc:
            raise PowerError(self._mask(_connection_failure(what, exc))) from None

    def _basic_auth(self) -> str:
        pair = f"{self.target.username}:{self.target.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _tls_context(self) -> ssl.SSLContext:
        if not self.options["verify_tls"]:
            return ssl._create_unverified_context()  # noqa: S323 - the admin's verify_tls: false
        try:
            return ssl.create_default_context(cafile=self.options["ca_file"] or None)
        except (OSError, ssl.SSLError) as exc:
            raise PowerError(
                f"{self.target.node}: cannot read the CA file {self.options['ca_file']}: {exc}"
            ) from None

    def _mask(self, text: str) -> str:
        return mask(text, [self.target.password, self._basic_auth().split(" ", 1)[1]])


def _json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}  # 204 No Content, or a BMC that answers an action with nothing
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _http_failure(what: str, exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    detail = _error_messages(_json(raw)) or _plain_text(raw)
    status = exc.code
    if status == 401:
        hint = "the BMC refused the username or password"
    elif status == 403:
        hint = "the BMC user may not do this (needs the operator or administrator role)"
    elif status == 404:
        hint = "not found at the BMC (check the address and the option system_id)"
    elif status == 412:
        hint = "the system changed meanwhile (ETag); try again"
    else:
        hint = exc.reason or "refused"
    return f"{what} failed: HTTP {status}: {hint}" + (f": {detail}" if detail else "")


def _plain_text(raw: bytes) -> str:
    """A short non-JSON error body (some BMCs answer errors in plain text)."""
    text = raw.decode("utf-8", "replace").strip()
    return " ".join(text.split())[:300] if text and not text.startswith(("{", "<")) else ""


def _error_messages(body: dict[str, Any]) -> str:
    """A Redfish error body's messages: ``error.@Message.ExtendedInfo[].Message``, else
    ``error.message``."""
    error = body.get("error")
    if not isinstance(error, dict):
        return ""
    infos = error.get("@Message.ExtendedInfo") or []
    messages = [str(i.get("Message")) for i in infos if isinstance(i, dict) and i.get("Message")]
    if not messages and error.get("message"):
        messages = [str(error["message"])]
    return "; ".join(messages)[:1000]


def _connection_failure(what: str, exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    text = f"{what} failed: {reason}"
    if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        text += " - the BMC's certificate is not trusted: set the power option ca_file"
    return text
