"""Self-registration: the post-install script a node fetches, and the registration it sends.

``GET /api/clusters/post-install?mac=…`` (:func:`issue_script`) answers a node that is in an
active run, rebooting or installing: a fresh one-time token is issued (only its hash is
kept; a second fetch replaces the first token) and the node moves rebooting → installing.

``POST /api/clusters/register`` (:func:`register`) is checked in this order, and a refusal
changes nothing:

| check                                              | answer                              |
|----------------------------------------------------|-------------------------------------|
| a header missing or malformed                      | 400 naming the header               |
| timestamp more than CLUSTERS_REGISTRATION_SKEW_SECONDS (300) off | 403 ``stale_timestamp`` |
| token unknown (or replaced by a later fetch)       | 403 ``invalid_token``               |
| signature does not verify with the node-run's secret | 403 ``bad_signature``             |
| token past its expiry (the node's deadline)        | 403 ``token_expired``               |
| body not the registration (fields, values)         | 400 naming the field                |
| body's MAC is not the token's node                 | 403 ``wrong_node``                  |
| nonce already used by this node-run                | 409 ``replayed``                    |
| token used before, same registration               | 200, ``repeated: true``, no move    |
| token used before, another registration            | 409 ``token_used``                  |
| node not rebooting or installing                   | 409 ``not_expected``                |

On success the node is ``registered`` with what it sent (also on its ClusterNode), its
network boot is switched off by the power driver (a task on commit; a failure is noted, never
blocking) and its first readiness check is launched.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from portal.clusters import signing
from portal.clusters.actions import launch, power
from portal.clusters.actions.progress import settle_run
from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import RUN_ACTIVE, ClusterNode, NodeReprovision, RegistrationNonce
from portal.clusters.naming import (
    RegistrationInvalid,
    clean_registration,
    normalise_mac,
)
from portal.core.api.parsers import (
    MAX_DEPTH,
    NestingTooDeep,
    NotAnObject,
    RequestTooLarge,
    nesting_exceeds,
)
from portal.core.errors import Conflict, NotFound, PortalError
from portal.nodes.actions import do_pin_registered_keys

SCRIPT_TEMPLATE = "clusters/post_install.sh"
NO_SCRIPT = "No node with this MAC is waiting for its post-install script."
REGISTER_PATH = "/api/clusters/register"
SCRIPT_PHASES = (N.REBOOTING, N.INSTALLING)
MAX_BODY = 4096
logger = logging.getLogger(__name__)
HEADERS = {
    "token": "X-Portal-Token",
    "timestamp": "X-Portal-Timestamp",
    "nonce": "X-Portal-Nonce",
    "signature": "X-Portal-Signature",
}


class Refused(PortalError):
    """A registration that does not prove it comes from the node (403)."""

    status_code = 403
    code = "refused"


@dataclass(frozen=True)
class Registered:
    node_run: NodeReprovision
    repeated: bool


# --- the post-install script ----------------------------------------------------------------


def script_node_run(mac: object) -> NodeReprovision:
    """The node-run a script is for; the same 404 for an unknown MAC and a node not waiting
    for its script (nothing tells a caller which MACs exist)."""
    try:
        normalised = normalise_mac(mac)
    except ValueError:
        normalised = None
    found = (
        NodeReprovision.objects.filter(
            cluster_node__mac=normalised, status__in=SCRIPT_PHASES, run__status__in=RUN_ACTIVE
        )
        .select_related("cluster_node__node", "run")
        .first()
        if normalised
        else None
    )
    if found is None:
        raise NotFound(NO_SCRIPT, "mac")
    return found


def post_install_networks() -> list[IPv4Network | IPv6Network]:
    """CLUSTERS_POST_INSTALL_NETWORKS; ValueError names a bad entry."""
    networks = []
    for entry in settings.CLUSTERS_POST_INSTALL_NETWORKS:
        try:
            networks.append(ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"CLUSTERS_POST_INSTALL_NETWORKS: {entry!r} is not a network"
            ) from None
    return networks


def check_source(client_ip: str | None) -> None:
    """Only the provisioning networks get a script (when set): else the same 404 as an
    unknown MAC. A bad setting serves nobody (fail closed)."""
    if not settings.CLUSTERS_POST_INSTALL_NETWORKS:
        return
    try:
        networks = post_install_networks()
        address = ip_address(client_ip or "")
    except ValueError as exc:
        logger.error("post-install script refused: %s", exc)
        raise NotFound(NO_SCRIPT, "mac") from None
    if not any(address in network for network in networks):
        raise NotFound(NO_SCRIPT, "mac")


def issue_script(mac: object, base_url: str, client_ip: str | None = None) -> str:
    """The post-install script for the node with ``mac`` (rebooting → installing)."""
    check_source(client_ip)
    token = signing.new_token()
    with transaction.atomic():
        node_run = script_node_run(mac)
        node_run = NodeReprovision.objects.select_for_update().get(pk=node_run.pk)
        if node_run.status not in SCRIPT_PHASES:
            raise NotFound(NO_SCRIPT, "mac")
        fields = {"token_hash": signing.token_hash(token)}
        if node_run.status == N.REBOOTING:
            node_run.move(
                N.INSTALLING, [N.REBOOTING], reason="post-install script fetched", **fields
            )
        else:
            node_run.note("post-install script fetched again (new token)", **fields)
    cluster_node = node_run.cluster_node
    url = (settings.CLUSTERS_PORTAL_URL or base_url).rstrip("/") + REGISTER_PATH
    values = {
        "url": url,
        "token": token,
        "secret": node_run.secret,
        "mac": cluster_node.mac,
        "link0": cluster_node.link0 or "",
    }
    context: dict[str, object] = {name: shlex.quote(str(value)) for name, value in values.items()}
    context |= {
        "node": cluster_node.node.name,
        "run": node_run.run_id,
        "expires": node_run.token_expires.strftime("%Y-%m-%d %H:%M:%S UTC")
        if node_run.token_expires
        else "the node's deadline",
    }
    return render_to_string(SCRIPT_TEMPLATE, context)


# --- the registration -----------------------------------------------------------------------


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for name, header in HEADERS.items():
        value = headers.get(header)
        if not value:
            raise PortalError(f"The {header} header is required.", field=header, code="required")
        values[name] = value.strip()
    if not values["timestamp"].isdigit() or len(values["timestamp"]) > 12:
        raise PortalError(
            "The timestamp is Unix time in whole seconds.", field=HEADERS["timestamp"]
        )
    if not signing.NONCE.match(values["nonce"]):
        raise PortalError("The nonce is 16-64 letters, digits, '_' or '-'.", field=HEADERS["nonce"])
    if not signing.SIGNATURE.match(values["signature"].lower()):
        raise PortalError(
            "The signature is 64 hex digits (HMAC-SHA256).", field=HEADERS["signature"]
        )
    if len(values["token"]) > 200:
        raise Refused("Unknown registration token.", field=HEADERS["token"], code="invalid_token")
    return values


def check_fresh(timestamp: str) -> None:
    skew = settings.CLUSTERS_REGISTRATION_SKEW_SECONDS
    if abs(time.time() - int(timestamp)) > skew:
        raise Refused(
            f"The timestamp is more than {skew} seconds from the portal's clock: check the "
            "node's clock (NTP).",
            field=HEADERS["timestamp"],
            code="stale_timestamp",
        )


def check_body(body: bytes) -> dict[str, str]:
    """The registration the old system took: mac, hostname, ip, link0, status."""
    return _cleaned(parse_body(body))


def parse_body(body: bytes) -> Any:
    """A JSON object, bounded like every API body (the API's codes: not_an_object, …)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise NestingTooDeep() from None
    except ValueError:
        raise PortalError("The body is not valid JSON.", code="parse_error") from None
    if nesting_exceeds(data, MAX_DEPTH):
        raise NestingTooDeep()
    if not isinstance(data, dict):
        raise NotAnObject()
    if len(body) > MAX_BODY:
        raise RequestTooLarge(f"A registration is at most {MAX_BODY} bytes.")
    return data


def _cleaned(data: object) -> dict[str, str]:
    try:
        return clean_registration(data)
    except RegistrationInvalid as exc:
        raise PortalError(exc.message, field=exc.field) from None


def authenticate(values: dict[str, str], body: bytes) -> NodeReprovision:
    """The node-run the token is for, if the request proves it holds its secret."""
    check_fresh(values["timestamp"])
    node_run = (
        NodeReprovision.objects.filter(token_hash=signing.token_hash(values["token"]))
        .exclude(token_hash="")
        .select_related("cluster_node__node", "run")
        .first()
    )
    if node_run is None:
        raise Refused("Unknown registration token.", field=HEADERS["token"], code="invalid_token")
    if not signing.signature_matches(
        node_run.secret, values["timestamp"], values["nonce"], body, values["signature"]
    ):
        raise Refused(
            "The signature does not match the request.",
            field=HEADERS["signature"],
            code="bad_signature",
        )
    if node_run.token_expires is None or node_run.token_expires <= timezone.now():
        raise Refused(
            "The registration token expired.", field=HEADERS["token"], code="token_expired"
        )
    return node_run


def register(headers: Mapping[str, str], body: bytes) -> Registered:
    parse_body(body)  # a body that is no JSON object is refused as every API body is
    values = check_headers(headers)
    node_run = authenticate(values, body)
    data = check_body(body)
    if data["mac"] != node_run.cluster_node.mac:
        raise Refused("This token was issued to another node.", field="mac", code="wrong_node")
    try:
        with transaction.atomic():
            locked = NodeReprovision.objects.select_for_update().get(pk=node_run.pk)
            RegistrationNonce.objects.create(node_run=locked, nonce=values["nonce"])
            if locked.token_used_at is not None:
                return _repeated(locked, data)
            return Registered(_apply(locked, data, how="signed"), repeated=False)
    except IntegrityError:
        raise Conflict(
            "This request was already received (nonce used).",
            field=HEADERS["nonce"],
            code="replayed",
        ) from None


def _repeated(node_run: NodeReprovision, data: dict[str, str]) -> Registered:
    if node_run.registration != data:
        raise Conflict(
            "This token was already used for another registration.",
            field=HEADERS["token"],
            code="token_used",
        )
    return Registered(node_run, repeated=True)


def legacy_register(data: object, by: Any) -> Registered:
    """The old registration call (no token; an admin's API token): the node with the MAC in
    an active run, rebooting or installing, is registered; an identical repeat is 200."""
    cleaned = _cleaned(data)
    with transaction.atomic():
        node_run = (
            NodeReprovision.objects.select_for_update()
            .filter(cluster_node__mac=cleaned["mac"], run__status__in=RUN_ACTIVE)
            .order_by("-pk")
            .first()
        )
        if node_run is None:
            raise NotFound("No node with this MAC is in an active run.", field="mac")
        if node_run.token_used_at is not None or node_run.registered_at is not None:
            return _repeated(node_run, cleaned)
        return Registered(_apply(node_run, cleaned, how="legacy call", by=by), repeated=False)


def _apply(
    node_run: NodeReprovision, data: dict[str, str], how: str, by: Any = None
) -> NodeReprovision:
    if node_run.status not in SCRIPT_PHASES:
        raise Conflict(
            f"Node {node_run.cluster_node.node.name} is {node_run.status}: not expecting a "
            "registration.",
            field="status",
            code="not_expected",
        )
    now = timezone.now()
    node_run.move(
        N.REGISTERED,
        SCRIPT_PHASES,
        reason=f"registered ({how}): {data['hostname']} {data['ip']} link0 {data['link0']}",
        by=by,
        registration=data,
        registered_at=now,
        token_used_at=now,
    )
    ClusterNode.objects.filter(pk=node_run.cluster_node_id).update(
        hostname=data["hostname"],
        ip=data["ip"],
        link0=data["link0"],
        registered_at=now,
        updated_at=now,
    )
    node_run.cluster_node.refresh_from_db()
    if data.get("host_keys"):  # the reinstall made new ones: what the jobs will check
        do_pin_registered_keys(node_run.cluster_node.node, data["host_keys"], by=by)
    power.enqueue_disable_network_boot(node_run)
    try:
        with transaction.atomic():
            launch.launch_ready_check(node_run)
    except PortalError as exc:
        node_run.move(N.ERROR, [N.REGISTERED], reason=f"cannot check readiness: {exc.message}")
        transaction.on_commit(lambda: settle_run(node_run.run_id))
    return node_run
