"""SSH host keys: pinned per node, written as a known_hosts file, checked strictly.

Every SSH node has its host keys pinned in ``Node.host_keys`` (known_hosts format without the
host names: ``ssh-ed25519 AAAA…``, one key a line). SSH always runs with
``StrictHostKeyChecking=yes`` against a known_hosts file written from the pinned keys, each
node's keys under its alias ``portal-node-<id>`` (``HostKeyAlias``), so two nodes on one
address (behind two bastions, or a re-used IP) never share keys and the global/user
known_hosts files play no part.

Trust on first use: a node without a pinned key gets it read (``ssh-keyscan``, or through
its jump host with ``ssh -W``) right before its first job connects, and pinned
(:func:`portal.nodes.actions.do_pin_first_contact`). A changed key is never accepted by a
job: ssh refuses it before any credential is sent, the job's reason names the node and both
fingerprints (:func:`portal.nodes.actions.refusal_reason`), and an admin accepts the new key
explicitly.

A node may connect through a jump host (``Node.jump_host``, one hop): the ssh_config file
written beside the known_hosts file has one ``Host portal-node-<id>`` block per jump host
(its address, port, user, key file, strict checking against the same file), and the
target's ssh gets ``ProxyCommand=ssh -F <ssh_config> -W %h:%p portal-node-<jump id>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from portal.core.childenv import child_environment

logger = logging.getLogger(__name__)

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# What a probe through a jump host asks for, one connection each (ssh-keyscan asks for all).
PROBE_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
)
KNOWN_HOSTS = "known_hosts"
SSH_CONFIG = "ssh_config"
# Safe in an ssh_config line and on a command line: no spaces, quotes, '%' or leading '-'.
_SAFE_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]][A-Za-z0-9_.:\[\]-]*$")
_SAFE_USER = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]*$")


class HostKeyError(ValueError):
    """Text that is not a host key (or a node that cannot be written into an ssh config)."""


@dataclass(frozen=True)
class HostKey:
    type: str
    blob: str  # base64, as in known_hosts

    @property
    def line(self) -> str:
        return f"{self.type} {self.blob}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` exactly as ``ssh-keygen -lf`` shows it."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    @property
    def short_type(self) -> str:
        return self.type.removeprefix("ssh-").split("-")[0].upper()


# --- parsing and showing ----------------------------------------------------------------------


def parse(text: str) -> list[HostKey]:
    """Keys from ``ssh-ed25519 AAAA…`` lines, or known_hosts / ssh-keyscan lines (the host
    names before the type are dropped). Comments and blank lines are skipped; duplicates
    are kept once. Raises HostKeyError for anything else."""
    found: list[HostKey] = []
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            raise HostKeyError(f"line {number}: markers such as {fields[0]} are not supported")
        index = next((i for i, f in enumerate(fields[:2]) if f in KEY_TYPES), None)
        if index is None or len(fields) < index + 2:
            raise HostKeyError(
                f"line {number}: not a host key (expected e.g. 'ssh-ed25519 AAAA…', as "
                "ssh-keyscan prints it)"
            )
        key = HostKey(fields[index], fields[index + 1])
        try:
            blob = base64.b64decode(key.blob, validate=True)
        except (binascii.Error, ValueError):
            raise HostKeyError(f"line {number}: the key is not valid base64") from None
        if not _blob_has_type(blob, key.type):
            raise HostKeyError(f"line {number}: the key's data is not a {key.type} key")
        if key not in found:
            found.append(key)
    return found


def _blob_has_type(blob: bytes, key_type: str) -> bool:
    if len(blob) < 4:
        return False
    size = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + size] == key_type.encode()


def normalize(text: str) -> str:
    """The stored form: one ``type base64`` line per key, sorted."""
    return "\n".join(sorted(key.line for key in parse(text)))


def fingerprints(text: str) -> list[str]:
    """``ED25519 SHA256:…`` per pinned key (unparseable text: one line saying so)."""
    try:
        return [f"{key.short_type} {key.fingerprint}" for key in parse(text)]
    except HostKeyError as exc:
        return [f"invalid: {exc}"]


# --- known_hosts and ssh_config for a set of nodes -------------------------------------------


def alias(node) -> str:
    """The name a node's keys are pinned under (``HostKeyAlias``) and its ssh_config Host."""
    return f"portal-node-{node.pk}"


def with_jump_hosts(nodes: Iterable) -> list:
    """The nodes and their jump hosts, each once, jump hosts first."""
    ordered: dict[int, object] = {}
    for node in nodes:
        jump = getattr(node, "jump_host", None) if node.jump_host_id else None
        if jump is not None:
            ordered.setdefault(jump.pk, jump)
    for node in nodes:
        ordered.setdefault(node.pk, node)
    return list(ordered.values())


def known_hosts_text(nodes: Iterable) -> str:
    lines: list[str] = []
    for node in nodes:
        try:
            keys = parse(node.host_keys)
        except HostKeyError:
            keys = []  # an invalid pin pins nothing: strict checking refuses the node
        lines.extend(f"{alias(node)} {key.line}" for key in keys)
    return "".join(line + "\n" for line in lines)


def check_connectable(node) -> None:
    """Values that go into ssh_config lines and ssh command lines must be plain."""
    if not _SAFE_HOST.match(node.address or ""):
        raise HostKeyError(f"node {node.name}: address {node.address!r} cannot be used for SSH")
    if not _SAFE_USER.match(node.login_user or ""):
        raise HostKeyError(f"node {node.name}: user {node.login_user!r} cannot be used for SSH")


def strict_options(known_hosts: Path, node) -> list[str]:
    """ssh ``-o`` options that check ``node``'s key against its pinned keys only."""
    return [
        f"UserKnownHostsFile={known_hosts}",
        "GlobalKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=yes",
        f"HostKeyAlias={alias(node)}",
        "CheckHostIP=no",
        "UpdateHostKeys=no",
    ]


def proxy_command(ssh_dir: Path, jump) -> str:
    config = shlex.quote(str(ssh_dir / SSH_CONFIG))
    return f"ssh -F {config} -W %h:%p {alias(jump)}"


def ssh_common_args(node, ssh_dir: Path) -> str:
    """``ansible_ssh_common_args`` for ``node``: strict checking, and its jump host."""
    options = strict_options(ssh_dir / KNOWN_HOSTS, node)
    if node.jump_host_id:
        options.append(f"ProxyCommand={proxy_command(ssh_dir, node.jump_host)}")
    return shlex.join(arg for option in options for arg in ("-o", option))


def _config_value(value) -> str:
    text = str(value)
    if '"' in text or "\n" in text:
        raise HostKeyError(f"cannot write {text!r} into an ssh config")
    return f'"{text}"' if " " in text else text


def ssh_config_text(jump_hosts: Iterable, ssh_dir: Path, key_paths: dict[int, Path]) -> str:
    """One Host block per jump host: how the ProxyCommand's ssh reaches it."""
    blocks = []
    for jump in jump_hosts:
        check_connectable(jump)
        lines = [
            f"Host {alias(jump)}",
            f"  HostName {jump.address}",
            f"  Port {int(jump.ssh_port)}",
            f"  User {jump.login_user}",
            "  BatchMode yes",
            f"  ConnectTimeout {int(settings.JOB_CONNECT_TIMEOUT)}",
            "  ServerAliveInterval 15",
            "  ControlMaster no",
            "  ControlPath none",
            *(
                f"  {option.replace('=', ' ', 1)}"
                for option in (
                    f"UserKnownHostsFile={_config_value(ssh_dir / KNOWN_HOSTS)}",
                    *strict_options(ssh_dir / KNOWN_HOSTS, jump)[1:],
                )
            ),
        ]
        key = key_paths.get(jump.credential_id)
        if key is not None:
            lines += [
                f"  IdentityFile {_config_value(key)}",
                "  IdentitiesOnly yes",
                "  IdentityAgent none",
            ]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write_ssh_files(nodes: Iterable, ssh_dir: Path, key_paths: dict[int, Path], write) -> None:
    """known_hosts (every node and jump host) and ssh_config (the jump hosts) in
    ``ssh_dir``; ``write(path, text)`` writes a private file."""
    nodes = with_jump_hosts(nodes)
    jumps = {node.jump_host_id: node.jump_host for node in nodes if node.jump_host_id}
    write(ssh_dir / KNOWN_HOSTS, known_hosts_text(nodes))
    write(ssh_dir / SSH_CONFIG, ssh_config_text(jumps.values(), ssh_dir, key_paths))


# --- reading a node's keys (first contact, accepting a new key) ------------------------------


class ScanError(RuntimeError):
    pass


def scan(node, ssh_dir: Path | None = None) -> list[HostKey]:
    """The keys ``node`` offers now. Direct: ``ssh-keyscan``. Behind a jump host: one ``ssh
    -W`` probe per key type through it (its own key checked strictly); ``ssh_dir`` must
    then hold the jump host's ssh_config and known_hosts. Raises ScanError."""
    check_connectable(node)
    if node.jump_host_id:
        if ssh_dir is None:
            raise ScanError("a node behind a jump host needs the jump host's ssh config")
        keys = _probe_through(node, ssh_dir)
    else:
        keys = _keyscan(node)
    if not keys:
        raise ScanError(f"node {node.name} offered no host key")
    return keys


def _keyscan(node) -> list[HostKey]:
    timeout = int(settings.JOB_CONNECT_TIMEOUT)
    command = [
        "ssh-keyscan",
        "-T",
        str(timeout),
        "-p",
        str(int(node.ssh_port)),
        "-t",
        "rsa,ecdsa,ed25519",
        node.address,
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout * 3 + 5,
            check=False,
            env=child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScanError(f"ssh-keyscan {node.address}: {exc}") from None
    try:
        keys = parse(done.stdout)
    except HostKeyError as exc:
        raise ScanError(f"ssh-keyscan {node.address}: {exc}") from None
    if not keys:
        problem = " ".join(line for line in done.stderr.splitlines() if not line.startswith("#"))
        raise ScanError(
            f"no answer from {node.address} port {node.ssh_port}"
            + (f": {problem.strip()}" if problem.strip() else "")
        )
    return keys


def _probe_through(node, ssh_dir: Path) -> list[HostKey]:
    with (
        tempfile.TemporaryDirectory(prefix="probe-", dir=ssh_dir) as scratch,
        ThreadPoolExecutor(len(PROBE_ALGORITHMS)) as pool,
    ):
        outputs = list(
            pool.map(lambda alg: _probe_one(node, ssh_dir, Path(scratch), alg), PROBE_ALGORITHMS)
        )
    keys, problems = [], []
    for text, problem in outputs:
        if problem:
            problems.append(problem)
        for key in parse(text):
            if key not in keys:
                keys.append(key)
    if not keys:
        raise ScanError(
            f"no host key from {node.address} port {node.ssh_port} through jump "
            f"host {node.jump_host.name}: {problems[0] if problems else 'no answer'}"
        )
    return keys


def _probe_one(node, ssh_dir: Path, scratch: Path, algorithm: str) -> tuple[str, str]:
    """Connects with no way to log in: ssh records the offered key (accept-new) in a scratch
    file during key exchange, then gives up at authentication."""
    known = scratch / f"{algorithm}.known"
    timeout = int(settings.JOB_CONNECT_TIMEOUT)
    options = [
        "BatchMode=yes",
        f"ConnectTimeout={timeout}",
        "StrictHostKeyChecking=accept-new",
        f"UserKnownHostsFile={known}",
        "GlobalKnownHostsFile=/dev/null",
        "HostKeyAlias=probe",
        f"HostKeyAlgorithms={algorithm}",
        "CheckHostIP=no",
        "UpdateHostKeys=no",
        "PubkeyAuthentication=no",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "GSSAPIAuthentication=no",
        "HostbasedAuthentication=no",
        "IdentityAgent=none",
        "ControlMaster=no",
        "ControlPath=none",
        f"ProxyCommand={proxy_command(ssh_dir, node.jump_host)}",
    ]
    command = [
        "ssh",
        "-F",
        "none",
        *(a for o in options for a in ("-o", o)),
        "-p",
        str(int(node.ssh_port)),
        "-l",
        node.login_user,
        node.address,
        "true",
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout * 2 + 5,
            check=False,
            stdin=subprocess.DEVNULL,
            env=child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", str(exc)
    text = known.read_text() if known.exists() else ""
    problem = "" if text else " ".join(done.stderr.split())[:300]
    return text, problem


# --- explaining a refusal ---------------------------------------------------------------------

_CHANGED = re.compile(r"Host key for (portal-node-(\d+)) has changed")
_UNKNOWN = re.compile(r"No (\S+) host key is known for (portal-node-(\d+))")
_SENT = re.compile(r"sent by the remote host is(?:\\[rn]|\s)*(SHA256:[A-Za-z0-9+/]{43})")


@dataclass
class Refusal:
    node_id: int
    changed: bool  # False: no pinned key of the type the node offers (or none at all)
    got: str | None  # fingerprint the node sent, when ssh printed it


def refusals(messages: Iterable[str]) -> list[Refusal]:
    """Host key refusals in ssh's error output (an unreachable host's message)."""
    found: dict[int, Refusal] = {}
    for message in messages:
        for match in _CHANGED.finditer(message):
            sent = _SENT.search(message)
            found[int(match.group(2))] = Refusal(
                int(match.group(2)), True, sent.group(1) if sent else None
            )
        for match in _UNKNOWN.finditer(message):
            found.setdefault(int(match.group(3)), Refusal(int(match.group(3)), False, None))
    return list(found.values())


def describe_refusal(node, refusal: Refusal, got: list[str], jumped_from=None) -> str:
    who = f"node {node.name}"
    if jumped_from is not None:
        who += f" (jump host of {jumped_from.name})"
    expected = ", ".join(key.fingerprint for key in parse_quietly(node.host_keys))
    offered = ", ".join(got) or "unknown"
    if not expected:
        return (
            f"no host key pinned for {who} (first contact could not read it; got "
            f"{offered}); the next job reads it again, or an admin accepts it"
        )
    return (
        f"host key of {who} changed (expected {expected}, got {offered}); an admin must "
        "accept the new key"
    )


def parse_quietly(text: str) -> list[HostKey]:
    try:
        return parse(text)
    except HostKeyError:
        return []
