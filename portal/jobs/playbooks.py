"""Which playbooks exist and which nodes a limit selects."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from portal.core.errors import PortalError

if TYPE_CHECKING:
    from portal.nodes.models import Node

PLAYBOOK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.ya?ml$")


def playbooks_dir() -> Path:
    return Path(settings.PLAYBOOKS_DIR)


def available_playbooks() -> list[str]:
    root = playbooks_dir()
    return sorted(str(p.relative_to(root)) for p in root.glob("*.y*ml") if p.is_file())


def resolve_playbook(name: str) -> Path:
    """The playbook's path, refusing anything outside playbooks/ (no ``../``)."""
    if not isinstance(name, str) or not PLAYBOOK_NAME.match(name) or ".." in name.split("/"):
        raise PortalError(f"{name!r} is not a playbook name (e.g. 'ping.yml').", field="playbook")
    # os.path on strings: pathlib's resolve() and parents cost a launch three times as much.
    root = os.path.realpath(playbooks_dir())
    path = os.path.realpath(os.path.join(root, name))
    if not path.startswith(os.path.join(root, "")) or not os.path.isfile(path):
        known = ", ".join(available_playbooks()) or "none"
        raise PortalError(
            f"Unknown playbook {name!r} (known: {known}).",
            field="playbook",
            code="unknown_playbook",
        )
    return Path(path)


# (playbooks directory, name) -> the real path resolve_playbook gave, in this process.
_LAUNCHABLE: dict[tuple[str, str], str] = {}


def check_playbook(name: str) -> None:
    """``resolve_playbook``'s refusal for a launch, its answer remembered in this process: a
    name it accepted once is checked again only for its file still being there. One stat,
    where ``realpath`` takes one of every component of two paths, and under load each system
    call may hand the interpreter's lock to another request's thread: the checks were 4% of
    the launch view's time in gunicorn. The worker resolves the name in full again before it
    runs it (``runner``), so a symlink changed since never runs a file outside playbooks/."""
    key = (str(settings.PLAYBOOKS_DIR), name)
    path = _LAUNCHABLE.get(key)
    if path is not None and os.path.isfile(path):
        return
    _LAUNCHABLE.pop(key, None)  # gone: refused below unless it resolves again
    _LAUNCHABLE[key] = str(resolve_playbook(name))


def _terms(limit: str) -> list[str]:
    return [term.strip() for term in re.split(r"[,:]", limit) if term.strip()]


def _matches(node: Node, pattern: str) -> bool:
    group = node.group.name if node.group is not None else ""
    return (
        fnmatch.fnmatchcase(node.name, pattern)
        or (bool(group) and fnmatch.fnmatchcase(group, pattern))
        or pattern == "all"
    )


def select_nodes(nodes: Iterable[Node], limit: str) -> list[Node]:
    """Ansible-style limit over node names and group names: ``web*,db-1,!db-2``."""
    nodes = list(nodes)
    if not limit:
        return nodes
    include = [t for t in _terms(limit) if not t.startswith("!")]
    exclude = [t[1:] for t in _terms(limit) if t.startswith("!")]
    chosen = [n for n in nodes if not include or any(_matches(n, p) for p in include)]
    return [n for n in chosen if not any(_matches(n, p) for p in exclude)]
