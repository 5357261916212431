"""SSH connection sharing between jobs.

Every job used to open (and at its end close) its own SSH master per node, so a short job
paid a full SSH handshake per host: most of a lab's assign-to-active time. Masters now live
in one private directory per worker user and are shared by later jobs to the same node,
under a name that changes with anything that changes how a job would log in (node address,
port, login user, credential and its secret, pinned host keys, and the same of its jump
host), so a master is only reused by jobs that would authenticate exactly like the one that
opened it. Changing or deleting a node or credential closes its masters at once
(:func:`close_node_masters`, which ``portal.nodes.actions`` calls through its
``on_login_changed`` hook).

A master idles out ``ControlPersist`` (60 s) after its last session. The name also changes
every ``JOB_SSH_SHARE_SECONDS``: a busy master is not reused past that window, so a key
revoked on a node stops being usable through the portal within one window plus the
running job. ``JOB_SSH_SHARE_SECONDS=0`` turns sharing off (one master per job, closed
at its end). A stopping worker asks every master to stop taking new sessions.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import stat
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from portal.core.childenv import child_environment
from portal.nodes.choices import Connection

if TYPE_CHECKING:
    from portal.nodes.models import Node

logger = logging.getLogger(__name__)

CONTROL_PERSIST_SECONDS = 60


class ControlDirError(RuntimeError):
    pass


def shared_dir() -> Path:
    """``<JOBS_CONTROL_DIR>/portal-ssh-<uid>``, 0700 and this user's, or an error."""
    path = Path(settings.JOBS_CONTROL_DIR) / f"portal-ssh-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise ControlDirError(
            f"SSH control directory {path} must be a directory of this user with mode 0700"
        )
    return path


def sharing() -> bool:
    return settings.JOB_SSH_SHARE_SECONDS > 0


def control_name(node: Node) -> str:
    """Short (a socket path has 108 bytes at most) and keyed by how the job logs in."""
    window = int(time.time() // settings.JOB_SSH_SHARE_SECONDS)
    parts = [*_login_parts(node), window]
    if node.jump_host is not None:  # through a jump host: its login and pinned keys count too
        parts += ["jump", *_login_parts(node.jump_host)]
    login = "\0".join(str(part) for part in parts)
    digest = hmac.new(settings.SECRET_KEY.encode(), login.encode(), hashlib.sha256)
    return f"n{node.pk}-{digest.hexdigest()[:20]}"


def _login_parts(node: Node) -> list[Any]:
    credential = node.credential
    return [
        node.pk,
        node.address,
        node.ssh_port,
        node.login_user,
        credential.pk if credential else "",
        credential.secret if credential else "",
        node.host_keys,
    ]


def add_control_paths(
    hostvars: dict[str, dict[str, Any]], nodes: Iterable[Node], directory: Path
) -> None:
    for node in nodes:
        if node.connection == Connection.SSH:
            hostvars[node.name]["ansible_control_path"] = str(directory / control_name(node))


def stop_masters(directory: Path, how: str = "stop") -> int:
    """``ssh -O stop`` (no new sessions; running ones finish) or ``-O exit`` for each
    master socket in ``directory``."""
    count = 0
    for socket_path in directory.glob("*"):
        if not socket_path.is_socket():
            continue
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", how, "portal"],
            capture_output=True,
            env=child_environment(),
            timeout=10,
            check=False,
        )
        count += 1
    return count


def close_node_masters(node_ids: Iterable[int]) -> int:
    """``ssh -O exit`` every shared master to these nodes (any window): called when a node
    or its credential changes or goes, so no job keeps using a login that no longer holds."""
    if not sharing():
        return 0  # per-job masters end with their job
    try:
        directory = shared_dir()
    except (ControlDirError, OSError) as exc:  # a web process may not own one: nothing to do
        logger.warning("cannot close shared SSH masters: %s", exc)
        return 0
    count = 0
    for pk in set(node_ids):
        for socket_path in directory.glob(f"n{int(pk)}-*"):
            if socket_path.is_socket():
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    subprocess.run(
                        ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "portal"],
                        capture_output=True,
                        env=child_environment(),
                        timeout=10,
                        check=False,
                    )
                count += 1
            socket_path.unlink(missing_ok=True)
    if count:
        logger.info("closed %d shared SSH masters of nodes %s", count, sorted(set(node_ids)))
    return count


def stop_shared_masters() -> None:
    if sharing():
        count = stop_masters(shared_dir())
        logger.info("asked %d shared SSH masters to stop", count)
