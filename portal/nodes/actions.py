"""Writes to nodes, groups and credentials."""

import functools
import logging
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.core.errors import Conflict
from portal.core.services import editable_fields, model_update
from portal.nodes import hostkeys, selectors
from portal.nodes.choices import Connection
from portal.nodes.models import Credential, Node, NodeGroup

logger = logging.getLogger(__name__)

# What decides how a job logs in to a node: a change closes the node's shared SSH masters.
CONNECTION_FIELDS = (
    "address",
    "connection",
    "ssh_port",
    "ssh_user",
    "credential_id",
    "jump_host_id",
    "host_keys",
)
# Who pinned the keys, and how: the actions' own record (not editable in a form).
PIN_FIELDS = ("host_keys_pinned_at", "host_keys_pinned_by", "host_keys_pinned_how")


class PinHow:
    FIRST_CONTACT = "first_contact"  # read by the portal before the first job connected
    SET = "set"  # typed in or cleared by an admin/operator
    ACCEPTED = "accepted"  # an admin accepted the key the node offers now
    REGISTERED = "registered"  # sent by the node itself in a signed registration (reinstall)


def _save_validated(instance):
    instance.full_clean()
    instance.save()
    return instance


# Told, on commit, the ids of nodes whose login changed or that went: portal.jobs closes
# the SSH masters its jobs share to them (it registers in its ready(); nodes imports no jobs).
_LOGIN_CHANGED: list[Callable[[list[int]], object]] = []


def on_login_changed(callback: Callable[[list[int]], object]) -> None:
    """Registering the same callback twice is a no-op."""
    if callback not in _LOGIN_CHANGED:
        _LOGIN_CHANGED.append(callback)


def _close_masters_on_commit(node_ids) -> None:
    ids = sorted(set(node_ids))
    for callback in list(_LOGIN_CHANGED) if ids else ():
        transaction.on_commit(functools.partial(callback, ids))


def _mark_pinned(node: Node, how: str, by) -> None:
    node.host_keys_pinned_at = timezone.now() if node.host_keys else None
    node.host_keys_pinned_by = by
    node.host_keys_pinned_how = how if node.host_keys else ""


@transaction.atomic
def do_create_node(*, by=None, **fields) -> Node:
    return do_add_node(Node(**fields), by=by)


@transaction.atomic
def do_add_node(node: Node, *, by=None) -> Node:
    """Save a new node (API, admin); keys given with it count as pinned by ``by``."""
    node.full_clean()
    _mark_pinned(node, PinHow.SET, by)
    node.save()
    return node


@transaction.atomic
def do_update_node(node: Node, *, by=None, **fields) -> Node:
    """Apply ``fields`` (only those that differ are written)."""
    before = selectors.stored_values(node, CONNECTION_FIELDS)
    # full_clean() normalizes host_keys: compared with the stored keys below.
    node, changed = model_update(node, fields, editable_fields(Node))
    if not changed:
        return node
    if node.host_keys != before.get("host_keys", ""):
        _mark_pinned(node, PinHow.SET, by)
        node.save(update_fields=[*PIN_FIELDS, "updated_at"])
    if any(before.get(name) != getattr(node, name) for name in CONNECTION_FIELDS):
        _close_masters_on_commit(selectors.with_jumping_nodes([node.pk]))
    return node


@transaction.atomic
def do_delete_node(node: Node) -> None:
    ids = selectors.with_jumping_nodes([node.pk])
    node.delete()
    _close_masters_on_commit(ids)


@transaction.atomic
def do_create_group(**fields) -> NodeGroup:
    return _save_validated(NodeGroup(**fields))


@transaction.atomic
def do_update_group(group: NodeGroup, **fields) -> NodeGroup:
    return model_update(group, fields, editable_fields(NodeGroup))[0]


@transaction.atomic
def do_create_credential(**fields) -> Credential:
    return _save_validated(Credential(**fields))


@transaction.atomic
def do_update_credential(credential: Credential, **fields) -> Credential:
    # An empty secret on update means "keep the stored one" (it is never shown back).
    if not fields.get("secret"):
        fields.pop("secret", None)
    model_update(
        credential, fields, editable_fields(Credential), also_save=["hint"]
    )  # save() derives the hint
    _close_masters_on_commit(selectors.with_jumping_nodes(selectors.node_ids_using(credential)))
    return credential


def check_credential_unused(credential: Credential) -> None:
    users = selectors.node_names_using(credential, limit=5)
    if users:
        raise Conflict(f"Credential is used by nodes: {', '.join(users)}.", field="credential")


@transaction.atomic
def do_delete_credential(credential: Credential) -> None:
    check_credential_unused(credential)
    ids = selectors.with_jumping_nodes(selectors.node_ids_using(credential))
    credential.delete()
    _close_masters_on_commit(ids)


# --- host keys ------------------------------------------------------------------------------


def _pin(
    node: Node, keys: list[hostkeys.HostKey], how: str, by=None, *, only_if_unpinned: bool = False
) -> bool:
    """Store the keys (a guarded UPDATE: first contact never overwrites a pin)."""
    text = "\n".join(sorted(key.line for key in keys))
    rows = Node.objects.filter(pk=node.pk)
    if only_if_unpinned:
        rows = rows.filter(host_keys="")
    now = timezone.now()
    with transaction.atomic():
        changed = (
            rows.update(
                host_keys=text,
                host_keys_pinned_at=now,
                host_keys_pinned_by=by,
                host_keys_pinned_how=how,
                updated_at=now,
            )
            == 1
        )
        if changed:
            _close_masters_on_commit(selectors.with_jumping_nodes([node.pk]))
    if changed:
        node.host_keys, node.host_keys_pinned_at = text, now
        node.host_keys_pinned_by, node.host_keys_pinned_how = by, how
        logger.info(
            "host keys of node %s pinned (%s): %s",
            node.name,
            how,
            ", ".join(key.fingerprint for key in keys),
        )
    else:
        node.refresh_from_db(
            fields=[
                "host_keys",
                "host_keys_pinned_at",
                "host_keys_pinned_by",
                "host_keys_pinned_how",
            ]
        )
    return changed


def check_ssh_node(node: Node) -> None:
    if node.connection != Connection.SSH:
        raise Conflict(
            f"Node {node.name} is not reached over SSH: it has no host key.", field="connection"
        )


def scan_host_keys(node: Node) -> list[hostkeys.HostKey]:
    """The keys ``node`` offers now (through its jump host, whose own pinned key is checked).
    Raises Conflict with the reason when it cannot be read."""
    check_ssh_node(node)
    try:
        if not node.jump_host_id:
            return hostkeys.scan(node)
        with _scan_dir() as ssh_dir:
            _write_jump_files([node], ssh_dir)
            return hostkeys.scan(node, ssh_dir)
    except (hostkeys.ScanError, hostkeys.HostKeyError) as exc:
        raise Conflict(
            f"cannot read the host key of {node.name}: {exc}", field="host_keys"
        ) from None


def refusal_reason(messages: Iterable[str], unreachable_nodes: Iterable[Node] = ()) -> str:
    """The job's reason when ssh refused a node's host key ('' when it did not): each node
    named with the pinned and the offered fingerprints. A jump host's refusal is not in the
    message (ssh sends a ProxyCommand's errors to /dev/null under ControlPersist): the jump
    hosts of ``unreachable_nodes`` are read and compared with their pins."""
    found = {refusal.node_id: refusal for refusal in hostkeys.refusals(messages)}
    offered: dict[int, list[str]] = {}
    for down in unreachable_nodes:
        jump = down.jump_host if down.jump_host_id else None
        if jump is None or jump.pk in found or not jump.host_keys:
            continue
        try:
            keys = scan_host_keys(jump)
        except Exception as exc:  # unreachable itself: not a key problem we can tell
            logger.info("cannot read the host key of jump host %s: %s", jump.name, exc)
            continue
        pinned = set(hostkeys.parse_quietly(jump.host_keys))
        if not pinned & set(keys):
            found[jump.pk] = hostkeys.Refusal(jump.pk, True, None)
            offered[jump.pk] = [key.fingerprint for key in keys]
    if not found:
        return ""
    nodes = Node.objects.select_related("credential", "jump_host__credential").in_bulk(found)
    reasons = []
    for refusal in found.values():
        node = nodes.get(refusal.node_id)
        if node is None:
            continue
        got = [refusal.got] if refusal.got else offered.get(node.pk, [])
        if not got:
            try:  # ssh did not print it (a key of another type, or none pinned): read it
                got = [key.fingerprint for key in scan_host_keys(node)]
            except Exception as exc:  # best effort: the refusal stands either way
                logger.info("cannot read the offered key of %s: %s", node.name, exc)
        jumped_from = Node.objects.filter(jump_host=node).order_by("name").first()
        reasons.append(hostkeys.describe_refusal(node, refusal, got, jumped_from))
    return "; ".join(reasons)


def do_record_host_key(node: Node, *, by=None) -> Node:
    """Trust on first use: read and pin the node's keys if none are pinned yet (a pinned key
    is left as it is: changing it is :func:`do_accept_host_key`)."""
    if not node.host_keys:
        _pin(
            node,
            scan_host_keys(node),
            PinHow.FIRST_CONTACT if by is None else PinHow.SET,
            by,
            only_if_unpinned=True,
        )
    return node


def do_pin_registered_keys(node: Node, keys_text: str, *, by=None) -> Node:
    """Pin the keys a reinstalled node sent in its own signed registration (a reinstall makes
    new host keys; the registration's one-time token and HMAC vouch for them, which is
    stronger than trusting whatever answers first). HostKeyError for text that is no key."""
    keys = hostkeys.parse(keys_text)
    if not keys:
        raise hostkeys.HostKeyError("no host key given")
    _pin(node, keys, PinHow.REGISTERED, by)
    return node


def do_accept_host_key(node: Node, *, by) -> Node:
    """An admin accepts the key the node offers now (after a reinstall, a key rotation):
    re-read it and pin it in place of the old one, recording who accepted it."""
    _pin(node, scan_host_keys(node), PinHow.ACCEPTED, by)
    return node


def do_pin_first_contact(nodes, ssh_dir: Path, key_dir: Path) -> dict[str, str]:
    """Before a job connects: pin the keys of its SSH nodes (and their jump hosts) that have
    none, jump hosts first. Returns {node name: why it could not be read}; such a node stays
    unpinned, so strict checking refuses it and the job says why."""
    everything = [n for n in hostkeys.with_jump_hosts(nodes) if n.connection == Connection.SSH]
    unpinned = [n for n in everything if not n.host_keys]
    if not unpinned:
        return {}
    problems: dict[str, str] = {}
    direct = [n for n in unpinned if not n.jump_host_id]
    _scan_and_pin(direct, None, problems)
    jumped = [n for n in unpinned if n.jump_host_id]
    if jumped:
        pinned = {n.pk: n.host_keys for n in everything}
        for node in jumped:  # the jump host objects hanging off these nodes, refreshed
            node.jump_host.host_keys = pinned.get(node.jump_host_id, node.jump_host.host_keys)
        _write_jump_files(jumped, ssh_dir, key_dir)
        _scan_and_pin(jumped, ssh_dir, problems)
    for name, problem in problems.items():
        logger.warning("first contact: cannot read the host key of %s: %s", name, problem)
    return problems


def _scan_and_pin(nodes, ssh_dir, problems: dict) -> None:
    if not nodes:
        return

    def scan(node):
        try:
            return node, hostkeys.scan(node, ssh_dir), None
        except (hostkeys.ScanError, hostkeys.HostKeyError) as exc:
            return node, None, str(exc)

    with ThreadPoolExecutor(min(16, len(nodes))) as pool:
        results = list(pool.map(scan, nodes))
    for node, keys, problem in results:
        if problem:
            problems[node.name] = problem
        else:
            _pin(node, keys, PinHow.FIRST_CONTACT, only_if_unpinned=True)


def _write_jump_files(nodes, ssh_dir: Path, key_dir: Path | None = None) -> None:
    from portal.nodes.inventory import KeyWriter, write_ssh_files

    write_ssh_files(nodes, ssh_dir, KeyWriter(key_dir or ssh_dir / "keys"))


class _scan_dir(tempfile.TemporaryDirectory):
    """A private scratch directory (the jump host's key is written there briefly)."""

    def __init__(self):
        base = Path(settings.JOBS_WORK_DIR)
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        super().__init__(prefix="hostkey-scan-", dir=base)

    def __enter__(self) -> Path:
        return Path(self.name)
