"""The portal's nodes as an Ansible inventory: one builder for operators and for the runner.

:func:`build_inventory` returns Ansible's JSON inventory format (what an inventory script
prints for ``--list``). Secrets: SSH keys only, and only when the caller gives a ``key_dir``
(files 0600 in a 0700 directory); password secrets never. Strings that come from the
database are :class:`Unsafe`, so neither serializer (:func:`to_json` for the inventory
script, :func:`to_yaml` for a static ``hosts.yml``) lets Ansible template them.
"""

import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from portal.core.unsafe import Unsafe, dump_yaml
from portal.nodes import hostkeys
from portal.nodes.choices import Connection, CredentialKind, NodePurpose
from portal.nodes.models import Credential, Node

LOCAL_PYTHON = "{{ ansible_playbook_python }}"  # local nodes: the python running Ansible
RESERVED_GROUPS = frozenset({"all", "ungrouped", "_meta"})
_NOT_IN_GROUP_NAME = re.compile(r"[^A-Za-z0-9_]")


class InventoryError(Exception):
    """The inventory cannot be built as asked (e.g. a key directory others can read)."""


# --- building -------------------------------------------------------------------------------


def build_inventory(
    nodes: Iterable[Node] | None = None,
    key_dir: str | Path | None = None,
    ssh_dir: str | Path | None = None,
) -> dict:
    """Ansible's JSON inventory for ``nodes`` (default: every enabled node).

    Given nodes are used as they are (a disabled one is included); a QuerySet gets its
    credential and group joined. With ``key_dir``, each SSH node's key credential is
    written there as ``credential-<pk>`` and referenced by ``ansible_ssh_private_key_file``;
    without it no secret is read at all. With ``ssh_dir``, the nodes' pinned host keys are
    written there as ``known_hosts`` (and the jump hosts as ``ssh_config``) and each SSH
    node gets ``ansible_ssh_common_args`` that check its key strictly and route it through
    its jump host (:mod:`portal.nodes.hostkeys`).
    """
    if nodes is None:
        nodes = Node.objects.filter(enabled=True)
    if isinstance(nodes, QuerySet):
        nodes = nodes.select_related("credential", "group", "jump_host__credential")
        if key_dir is None:
            nodes = nodes.defer("credential__secret", "jump_host__credential__secret")
    nodes = list(nodes)
    keys = KeyWriter(key_dir) if key_dir is not None else None
    if ssh_dir is not None:
        ssh_dir = Path(ssh_dir).expanduser().absolute()
        write_ssh_files(nodes, ssh_dir, keys)
    hostvars: dict[str, dict] = {}
    groups: dict[str, set[str]] = {purpose_group(p): set() for p in NodePurpose.values}
    for node in sorted(nodes, key=lambda n: n.name):
        hostvars[node.name] = host_vars(node, keys)
        if ssh_dir is not None and node.connection == Connection.SSH:
            hostvars[node.name]["ansible_ssh_common_args"] = Unsafe(
                hostkeys.ssh_common_args(node, ssh_dir)
            )
        for group in node_groups(node):
            groups.setdefault(group, set()).add(node.name)
    inventory: dict = {"_meta": {"hostvars": hostvars}, "all": {"children": sorted(groups)}}
    for name in sorted(groups):
        inventory[name] = {"hosts": sorted(groups[name])}
    return inventory


def host_vars(node: Node, keys: "KeyWriter | None" = None) -> dict:
    variables = {
        "ansible_host": Unsafe(node.address),
        "ansible_port": node.ssh_port,
        "ansible_user": Unsafe(node.login_user),
        "ansible_become": node.become,
    }
    if node.connection == Connection.LOCAL:
        variables["ansible_connection"] = "local"
        variables["ansible_python_interpreter"] = LOCAL_PYTHON
        return variables
    credential = node.credential
    if keys is not None and credential is not None and credential.kind == CredentialKind.SSH_KEY:
        variables["ansible_ssh_private_key_file"] = str(keys.write(credential))
    # A password credential contributes nothing: its nodes need `--ask-pass`.
    return variables


# --- group names ----------------------------------------------------------------------------


def group_name(text: str) -> str:
    """``text`` as a valid Ansible group name part: anything but [A-Za-z0-9_] becomes '_'."""
    return _NOT_IN_GROUP_NAME.sub("_", text)


def purpose_group(purpose: str) -> str:
    return f"purpose_{group_name(purpose)}"


def node_group_name(name: str) -> str:
    """A NodeGroup keeps its own name (so ``--limit site-a`` means the same to the portal and
    to Ansible); only a name Ansible reserves is prefixed: ``all`` -> ``group_all``."""
    return f"group_{name}" if name in RESERVED_GROUPS else name


def label_group(key: str, value) -> str | None:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, str | int | float):
        return None  # only plain values make groups
    return f"label_{group_name(str(key))}_{group_name(str(value))}"


def node_groups(node: Node) -> set[str]:
    names = {purpose_group(node.purpose)}
    if node.group is not None:
        names.add(node_group_name(node.group.name))
    labels = node.labels if isinstance(node.labels, dict) else {}
    names.update(filter(None, (label_group(k, v) for k, v in labels.items())))
    return names


# --- pinned host keys and jump hosts --------------------------------------------------------


def write_ssh_files(
    nodes: Iterable[Node], ssh_dir: str | Path, keys: "KeyWriter | None" = None
) -> None:
    """``known_hosts`` and ``ssh_config`` (see :mod:`portal.nodes.hostkeys`) in ``ssh_dir``
    (0700, files 0600); a jump host's key file comes from ``keys`` when given."""
    ssh_dir = Path(ssh_dir).expanduser().absolute()
    nodes = list(nodes)
    key_paths = {}
    jumps = {node.jump_host_id: node.jump_host for node in nodes if node.jump_host is not None}
    for jump in jumps.values():
        credential = jump.credential if jump.credential_id else None
        if (
            keys is not None
            and credential is not None
            and credential.kind == CredentialKind.SSH_KEY
        ):
            key_paths[credential.pk] = keys.write(credential)
    directory = KeyWriter(ssh_dir)
    directory._prepare()  # the same checks: ours, 0700

    def write(path: Path, text: str) -> None:
        try:
            _write_private(path, text)
        except OSError as exc:
            raise InventoryError(f"cannot write {path}: {exc.strerror}") from None

    try:
        hostkeys.write_ssh_files(nodes, ssh_dir, key_paths, write)
    except hostkeys.HostKeyError as exc:
        raise InventoryError(str(exc)) from None


# --- SSH keys -------------------------------------------------------------------------------


class KeyWriter:
    """Writes credentials' private keys into one private directory, each key once."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser().absolute()
        self._paths: dict[int, Path] = {}
        self._ready = False

    def write(self, credential: Credential) -> Path:
        if credential.pk not in self._paths:
            self._prepare()
            path = self.directory / f"credential-{credential.pk}"
            try:
                _write_private(path, credential.secret.strip() + "\n")
            except OSError as exc:
                raise InventoryError(f"cannot write SSH key {path}: {exc.strerror}") from None
            self._paths[credential.pk] = path
        return self._paths[credential.pk]

    def _prepare(self) -> None:
        if self._ready:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True)
            os.chmod(self.directory, 0o700)  # exactly 0700, whatever the umask
        except FileExistsError:
            pass
        except OSError as exc:
            raise InventoryError(
                f"cannot create key directory {self.directory}: {exc.strerror}"
            ) from None
        info = os.stat(self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise InventoryError(f"key directory {self.directory} is not a directory")
        if info.st_uid != os.geteuid():
            raise InventoryError(f"key directory {self.directory} belongs to another user")
        if info.st_mode & 0o077:
            raise InventoryError(
                f"key directory {self.directory} is open to other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 700 it or use a new directory"
            )
        self._ready = True


def _write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with a 0600 file (a reader sees the old or new key)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- serializers ----------------------------------------------------------------------------


def _could_be_template(text: str) -> bool:
    return "{" in text or "#" in text


def _for_json(value):
    if isinstance(value, Unsafe):
        # Ansible trusts an inventory script's strings as templates unless marked.
        return {"__ansible_unsafe": str(value)} if _could_be_template(value) else str(value)
    if isinstance(value, dict):
        return {key: _for_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_for_json(item) for item in value]
    return value


def to_json(data: dict) -> str:
    """JSON for an inventory script's ``--list`` (or ``--host``: one host's variables)."""
    return json.dumps(_for_json(data), indent=2, sort_keys=True)


def to_yaml(inventory: dict) -> str:
    """The same inventory in the YAML inventory plugin's format (e.g. a job's hosts.yml)."""
    children: dict[str, dict[str, Any]] = {
        name: {"hosts": {host: {} for host in group.get("hosts", [])}}
        for name, group in inventory.items()
        if name not in ("_meta", "all")
    }
    data = {"all": {"hosts": inventory["_meta"]["hostvars"], "children": children}}
    return dump_yaml(data)
