"""The catalogue of installers every process reads: loaded on first use, reloaded on demand.

- **Start**: the first call in a process loads ``settings.INSTALLERS_DIR``. A bad manifest is
  left out and logged (``manage.py installers validate`` names it); it never stops the web
  process or the worker.
- **``manage.py installers reload``** replaces a generation file
  (``settings.INSTALLERS_GENERATION_FILE``, next to the database under var/ by default). Each
  process compares it (one ``stat``) on every use and reloads when it changed: web and worker
  processes pick the new catalogue up on their next request or task, whatever runs them and
  however many there are, with no list of pids to signal. Processes on another machine read
  their own INSTALLERS_DIR, so the command runs on each machine that has one.
- **SIGHUP** needs no handler here; each process manager already answers it with fresh
  processes, which load the catalogue on first use. gunicorn's master starts new workers and
  stops the old ones (a HUP sent to one gunicorn worker ends it; the master replaces it). A
  detached Celery worker re-executes itself on HUP (``install_worker_restart_handler``: same
  pid, new pool). A Celery pool process ends on HUP (billiard sets its terminate handler
  after ``worker_process_init``, so a handler installed there would be replaced) and the pool
  starts a fresh one. gunicorn's HUP is graceful (old workers finish their requests) and a
  Celery worker's is a warm restart (running tasks finish first, none start meanwhile); a HUP
  sent to a pool process ends its task. ``installers reload`` disturbs nothing.

Lookups take ids only from the loaded dict: a user's string never reaches the filesystem.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from portal.core.errors import Conflict, NotFound
from portal.installers.loader import Invalid, Loaded, load_catalogue, load_installer
from portal.installers.manifest import Manifest, Problem

logger = logging.getLogger(__name__)
SHOWN_ID = 64  # characters of a refused id echoed back


@dataclass(frozen=True)
class _State:
    loaded: Loaded
    generation: tuple[int, int] | None  # the generation file's (inode, mtime_ns) when read


_state: _State | None = None
_stale = False
_lock = threading.Lock()


def catalogue() -> Loaded:
    """The current catalogue (loading or reloading it when needed)."""
    state = _state
    if state is None or _stale or not _current(state):
        with _lock:
            state = _state
            if state is None or _stale or not _current(state):
                state = _load()
    return state.loaded


def all_manifests() -> list[Manifest]:
    return sorted(catalogue().manifests.values(), key=lambda manifest: manifest.id)


def get(installer_id: object) -> Manifest:
    """The installer with this id, or NotFound (404) for anything not in the catalogue."""
    manifest = catalogue().manifests.get(installer_id) if isinstance(installer_id, str) else None
    if manifest is None:
        shown = str(installer_id)[:SHOWN_ID]
        raise NotFound(f"No installer {shown!r} in the catalogue.", field="installer")
    return manifest


def get_exact(installer_id: str, sha256: str) -> Manifest:
    """The installer exactly as a job recorded it (its hash), read from disk now: the files
    a run copies are the ones the request checked. Anything else is a Conflict (409): the
    catalogue changed since the request (or the entry broke)."""
    directory = get(installer_id).directory  # the id must be in the catalogue
    try:
        current = load_installer(directory)
    except Invalid as exc:
        raise Conflict(f"Installer {installer_id!r} is invalid now: {exc.problems[0]}") from None
    if current.sha256 != sha256:
        raise Conflict(
            f"Installer {installer_id!r} changed since the request "
            f"(now version {current.version}, sha256 {current.sha256[:12]}).",
            field="installer",
        )
    return current


def problems() -> tuple[Problem, ...]:
    return catalogue().problems


def reload() -> Loaded:
    """Load this process's catalogue again now."""
    with _lock:
        return _load().loaded


def announce_reload() -> None:
    """Tell every process reading this catalogue to reload before its next use."""
    path = generation_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(uuid.uuid4().hex + "\n")
    os.replace(temporary, path)  # a new inode: never mistaken for the old one


def mark_stale() -> None:
    """Reload before the next use (this process only)."""
    global _stale
    _stale = True


def generation_file() -> Path:
    return Path(settings.INSTALLERS_GENERATION_FILE)


def _generation() -> tuple[int, int] | None:
    try:
        found = generation_file().stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns


def _current(state: _State) -> bool:
    same_dir = state.loaded.directory == Path(settings.INSTALLERS_DIR)
    return same_dir and state.generation == _generation()


def _load() -> _State:
    global _state, _stale
    _stale = False
    generation = _generation()  # before reading: a reload announced meanwhile is not lost
    loaded = load_catalogue(Path(settings.INSTALLERS_DIR))
    for problem in loaded.problems:
        logger.error("installer left out of the catalogue: %s", problem)
    _state = _State(loaded, generation)
    logger.info(
        "installer catalogue loaded: %d installers from %s",
        len(loaded.manifests),
        loaded.directory,
    )
    return _state
