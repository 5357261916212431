"""What a dead worker leaves behind, found and ended from outside.

A worker SIGKILLed mid-job takes its ``ansible-playbook`` with it (parent-death signal), but
not Ansible's forks: they call setsid and are reparented to init with their commands. On the
nodes the module keeps running too: sshd does not signal a session's commands when the
connection ends (seen on the test hosts: ``sleep`` outlived both its killed ssh client and
the killed master). And the run's private data dir, secrets in clear, stays on disk. Nothing
in the killed worker can act any more, so:

- Every local process of a run carries ``PORTAL_JOB_OWNER=<boot>.<pid>.<start time>`` of
  the pool process running it, and the run's data dir carries the same token in its name.
  An environment variable is inherited by every fork, setsid or not, and is readable in
  ``/proc/<pid>/environ`` by the same user and root. A token whose process is gone
  belongs to a dead worker: an exact test, with no database and no clock, which leaves the
  runs of other live workers sharing the machine and the work dir alone. The next worker
  start and every reaper run kill those processes (freeze, then kill) and remove those dirs.
  (A cgroup would need root or a delegated hierarchy; a subreaper can be killed with the
  pool. The variable needs neither.)
- Every module Ansible runs on a node carries ``PORTAL_JOB_RUN=<run tag>`` (the portal's
  callback, ``callback/awx_display.py``, adds it to every module's environment, inside
  become).
  When the reaper marks a job lost it launches a short job on the lost job's SSH nodes that
  ends the processes carrying that tag and their children (``playbooks/end_lost_run.yml``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from portal.jobs import processes, ssh
from portal.jobs.choices import ACTIVE

if TYPE_CHECKING:
    from portal.jobs.models import Job

logger = logging.getLogger(__name__)

OWNER_VAR = "PORTAL_JOB_OWNER"
RUN_VAR = "PORTAL_JOB_RUN"
# Beside the product playbooks (Ansible finds it there for operators' runs too), not under
# PLAYBOOKS_DIR, which may point elsewhere.
COLLECTIONS_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "collections"
END_RUN_ACTION = "jobs.end_lost_run"
END_RUN_PLAYBOOK = "end_lost_run.yml"
# job-<id>-<owner token>-<random>: the data dir of a run (runner.prepare).
DATA_DIR_NAME = re.compile(r"^job-(?P<job>\d+)-(?:(?P<owner>[0-9a-f]{8}\.\d+\.\d+)-)?")


# --- who runs what --------------------------------------------------------------------------


@functools.cache
def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]


def owner_token(pid: int | None = None) -> str:
    """Names one process for good: a pid may be reused, not with the same start and boot."""
    pid = pid or os.getpid()
    return f"{_boot_id()}.{pid}.{processes.start_time(pid)}"


def owner_alive(token: str) -> bool:
    boot, _, rest = token.partition(".")
    pid, _, started = rest.partition(".")
    if not pid.isdigit():
        return True  # not a token of ours: leave it alone
    started_at = processes.start_time(int(pid))
    return boot == _boot_id() and started_at is not None and str(started_at) == started


def run_tag(job: Job) -> str:
    """Names the job's processes on its nodes. Derived (the reaper needs nothing stored) and
    keyed, so portals sharing a node never end each other's runs."""
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, f"job-run:{job.pk}".encode(), hashlib.sha256).hexdigest()
    return f"{job.pk}-{digest[:16]}"


def run_environment(job: Job) -> dict[str, str]:
    """What the runner adds to ansible-playbook's environment so its processes can be found."""
    collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "/usr/share/ansible/collections")
    return {
        OWNER_VAR: owner_token(),
        RUN_VAR: run_tag(job),
        "ANSIBLE_COLLECTIONS_PATH": f"{COLLECTIONS_DIR}:{collections}",
    }


# --- local: processes and data dirs of dead workers -----------------------------------------


def _orphaned_processes() -> set[int]:
    """Processes of runs whose owner is dead, and their children (a child may have dropped
    the variable, e.g. under sudo). Shared SSH masters are spared, with their children (a
    bastion's ``ssh -W``): later jobs use them."""
    dead = {pid for pid, token in processes.carrying(OWNER_VAR).items() if not owner_alive(token)}
    masters = {pid for pid in dead if processes.is_ssh_master(pid)}
    return processes.with_descendants(dead - masters) - processes.with_descendants(masters)


def kill_orphaned_processes() -> int:
    count = processes.freeze_then_kill(_orphaned_processes)
    if count:
        logger.warning("killed %d processes left by dead workers", count)
    return count


def _work_dirs() -> set[Path]:
    # The former default too: runs before the tmpfs default left their dirs there.
    return {Path(settings.JOBS_WORK_DIR), Path(settings.VAR_DIR) / "jobs"}


def _dir_orphaned(name: str, active_jobs: set[int]) -> bool:
    match = DATA_DIR_NAME.match(name)
    if match is None:
        return False
    if match["owner"]:
        return not owner_alive(match["owner"])
    return int(match["job"]) not in active_jobs  # named before owners were recorded


def cleanup(data_dir: Path) -> None:
    """Close the job's own SSH masters (not shared ones), then remove every file the run
    had (keys included)."""
    record = data_dir / "control_dir"
    if record.exists():
        control = Path(record.read_text())
        ssh.stop_masters(control, how="exit")
        shutil.rmtree(control, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)


def remove_orphaned_dirs() -> int:
    """Data dirs (decrypted secrets inside) of runs whose worker is dead."""
    from portal.jobs.models import Job

    active = set(Job.objects.filter(status__in=ACTIVE).values_list("pk", flat=True))
    removed = 0
    for base in _work_dirs():
        for path in base.glob("job-*") if base.is_dir() else ():
            if _dir_orphaned(path.name, active):
                cleanup(path)
                removed += 1
    if removed:
        logger.warning("removed %d job data dirs left by dead workers", removed)
    return removed


def clean_up_local() -> None:
    """At worker start and in the reaper: processes first (they may still write files).
    Never raises: the reaper must go on to mark lost jobs, the worker must start."""
    for step in (kill_orphaned_processes, remove_orphaned_dirs):
        try:
            step()
        except Exception:
            logger.exception("cleaning up after dead workers failed")
