"""Runs one claimed job with ansible-runner. The ONLY module that imports ansible_runner.

One function per concern: prepare a private data dir (0700: inventory, keys 0600, extra vars
marked ``!unsafe``, ansible.cfg), run with an event sink, collect the outcome, clean up.
"""

import contextlib
import ctypes
import logging
import os
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import pexpect
import ptyprocess
import yaml
from django.conf import settings

from portal.core.childenv import without_inherited_secrets
from portal.core.unsafe import Unsafe, dump_yaml, mark_unsafe
from portal.jobs import orphans, processes, ssh
from portal.jobs.callback_plugin import CALLBACK_DIR, controller_command
from portal.jobs.choices import JobStatus
from portal.jobs.events import EventSink, Masker
from portal.jobs.fifo import EventFifo
from portal.jobs.models import Job
from portal.jobs.orphans import cleanup
from portal.jobs.playbooks import resolve_playbook
from portal.nodes import actions as node_actions
from portal.nodes.choices import Connection, CredentialKind
from portal.nodes.inventory import InventoryError, build_inventory, to_yaml
from portal.nodes.models import Credential

logger = logging.getLogger(__name__)


def _spawn_pty_without_close_delay(
    self: pexpect.spawn, args: list[str], **kwargs: Any
) -> ptyprocess.PtyProcess:
    """ansible-runner closes the pty only once ansible-playbook has exited, so the 0.1 s
    ptyprocess sleeps there "to let the kernel update the process status" is pure delay
    added to every job (isalive() still checks, and terminates if needed)."""
    process = ptyprocess.PtyProcess.spawn(args, **kwargs)
    process.delayafterclose = 0
    return process


pexpect.spawn._spawnpty = _spawn_pty_without_close_delay

RUNNER_STATUS = {
    "successful": JobStatus.SUCCESSFUL,
    "failed": JobStatus.FAILED,
    "timeout": JobStatus.TIMEOUT,
    "canceled": JobStatus.CANCELED,
}


@dataclass
class Outcome:
    status: str
    rc: int | None
    reason: str
    host_summary: dict
    event_count: int
    last_counter: int
    event_lag_p95_ms: float | None = None


# --- the private data dir ------------------------------------------------------------------


def _write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def write_inventory(job: Job, data_dir: Path) -> Path:
    """The job's nodes, built by the same code as the operators' inventory script."""
    nodes = list(job.nodes.select_related("credential", "group", "jump_host__credential"))
    # Trust on first use: nodes without a pinned host key get it read and pinned now.
    node_actions.do_pin_first_contact(nodes, data_dir / "ssh", data_dir / "keys")
    inventory = build_inventory(nodes, key_dir=data_dir / "keys", ssh_dir=data_dir / "ssh")
    if ssh.sharing():
        ssh.add_control_paths(inventory["_meta"]["hostvars"], nodes, ssh.shared_dir())
    for node in nodes:
        # Password logins: the secret goes only into this 0600 file, and stays text.
        # (an SSH node always has a credential: Node.clean)
        if node.connection == Connection.SSH and node.credential.kind == CredentialKind.PASSWORD:  # type: ignore[union-attr]
            hostvars = inventory["_meta"]["hostvars"][node.name]
            hostvars["ansible_password"] = Unsafe(node.credential.secret)  # type: ignore[union-attr]
    return _write_private(data_dir / "inventory" / "hosts.yml", to_yaml(inventory))


def given_secrets(job: Job, data_dir: Path) -> dict:
    """Every secret the run is given, for the masker: the action's sensitive variables, its
    nodes' credentials and every key file written for it (a jump host's too), which a
    playbook can print (``debug: var=hostvars``, ``lookup('file', ...)``) without naming them."""
    credentials = Credential.objects.filter(nodes__in=job.nodes.all()).distinct()
    key_files = (path for path in (data_dir / "keys").glob("*") if path.is_file())
    return {
        "variables": job.secrets(),
        "credentials": [_printable_parts(c.secret) for c in credentials],
        "key_files": [_printable_parts(path.read_text()) for path in key_files],
    }


def _printable_parts(secret: str) -> list[str]:
    """The secret whole and, for a private key, each line of its body: a key printed in
    part, or re-indented, is masked too. Armor lines are no secret, and a short last line
    ("Q==") would mask unrelated output."""
    lines = (line.strip() for line in secret.splitlines()[1:])
    return [
        secret,
        secret.strip(),
        *(line for line in lines if len(line) >= 16 and not line.startswith("-----")),
    ]


def make_control_dir(data_dir: Path) -> Path:
    """SSH control sockets need a short path (108 bytes at most): not under the data dir,
    which may be deep. Shared between jobs (portal.jobs.ssh), or else the job's own,
    recorded in the data dir so cleanup closes its masters."""
    if ssh.sharing():
        return ssh.shared_dir()
    control = Path(tempfile.mkdtemp(prefix="portal-cp-", dir=settings.JOBS_CONTROL_DIR))
    (data_dir / "control_dir").write_text(str(control))
    return control


def write_ansible_cfg(data_dir: Path) -> Path:
    # Host keys: only the pinned ones count (written by write_inventory, checked strictly;
    # each node's HostKeyAlias and jump host come with its ansible_ssh_common_args).
    ssh_args = (
        "-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=15 "
        f"-o UserKnownHostsFile={data_dir / 'ssh' / 'known_hosts'} "
        "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "
        "-o CheckHostIP=no -o UpdateHostKeys=no"
    )
    config = f"""[defaults]
roles_path = {settings.ROLES_DIR}
host_key_checking = True
retry_files_enabled = False
interpreter_python = auto_silent
forks = {settings.JOB_FORKS}
timeout = {settings.JOB_CONNECT_TIMEOUT}
local_tmp = {data_dir / "tmp"}

[ssh_connection]
pipelining = True
control_path_dir = {make_control_dir(data_dir)}
ssh_args = {ssh_args}
"""
    return _write_private(data_dir / "ansible.cfg", config)


def runner_settings(job: Job) -> dict:
    # Timeouts are enforced by the Watchdog (it kills the whole tree), not ansible-runner.
    return {"pexpect_timeout": settings.JOB_POLL_SECONDS, "suppress_ansible_output": True}


class Watchdog:
    """ansible-runner's cancel callback: ends the run on cancel, job timeout or idle timeout,
    killing every process of the run (see portal.jobs.processes)."""

    def __init__(self, job: Job, sink: EventSink, data_dir: Path):
        self.job, self.sink, self.marker = job, sink, str(data_dir)
        self.started = time.monotonic()
        self.ended_by: str | None = None

    def __call__(self) -> bool:
        if self.ended_by is None:
            self.ended_by = self._reason_to_end()
            if self.ended_by is not None:
                self._kill()
        return self.ended_by is not None

    def _reason_to_end(self) -> str | None:
        now = time.monotonic()
        if self.sink.cancel.is_set():
            return JobStatus.LOST if self.sink.lost.is_set() else JobStatus.CANCELED
        if now - self.started > self.job.timeout:
            return JobStatus.TIMEOUT
        if now - max(self.started, self.sink.last_event_at) > self.job.idle_timeout:
            return JobStatus.TIMEOUT
        return None

    def _kill(self) -> None:
        for pid in processes.children_running(os.getpid(), self.marker):
            count = processes.kill_tree(pid)
            logger.info(
                "ended run (%s): killed %d processes",
                self.ended_by,
                count,
                extra={"job_id": self.job.pk},
            )


def work_dir() -> Path:
    """JOBS_WORK_DIR, created 0700. It may sit in a shared tmpfs (/dev/shm): refused unless
    it is this user's own directory that no one else can write to."""
    base = Path(settings.JOBS_WORK_DIR)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise OSError(f"{base} must be a directory of this user that others cannot write to")
    return base


def prepare(job: Job) -> Path:
    # The owner's token in the name tells a later worker whether the run's worker is alive.
    prefix = f"job-{job.pk}-{orphans.owner_token()}-"
    data_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir()))
    os.chmod(data_dir, 0o700)
    write_inventory(job, data_dir)
    write_ansible_cfg(data_dir)
    # ansible-runner drops a `settings` argument when env/settings is absent: write the file.
    _write_private(data_dir / "env" / "settings", yaml.safe_dump(runner_settings(job)))
    variables = {**job.extra_vars, **job.secrets()}
    if variables:
        _write_private(data_dir / "env" / "extravars", dump_yaml(mark_unsafe(variables)))
    return data_dir


# --- parent-death signal: a SIGKILLed worker takes its ansible-playbook with it ------------

_PR_SET_PDEATHSIG = 1
_guard_active = False


def _set_parent_death_signal() -> None:
    if _guard_active:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


if sys.platform.startswith("linux"):
    os.register_at_fork(after_in_child=_set_parent_death_signal)


# --- run -----------------------------------------------------------------------------------


def run(job: Job) -> Outcome:
    """Run a claimed job to the end. Never raises for Ansible's own failures."""
    global _guard_active
    try:
        data_dir = prepare(job)
    except (OSError, ssh.ControlDirError, InventoryError) as exc:
        logger.error("cannot prepare the run: %s", exc, extra={"job_id": job.pk})
        return Outcome(JobStatus.ERROR, None, f"cannot prepare the run: {exc}", {}, 0, 0)
    sink = EventSink(job, Masker(given_secrets(job, data_dir)))
    fifo = EventFifo(data_dir / "events.fifo", sink.handle)
    watchdog = Watchdog(job, sink, data_dir)
    sink.start()
    fifo.start()
    _guard_active = True
    try:
        result = _run_ansible(_runner_kwargs(job, data_dir, sink, watchdog))
        status = watchdog.ended_by or RUNNER_STATUS.get(result.status, JobStatus.ERROR)
        rc = result.rc
        reason = _reason(status, rc, job)
    except Exception as exc:
        logger.exception("runner error", extra={"job_id": job.pk})
        status, rc, reason = JobStatus.ERROR, None, f"runner error: {type(exc).__name__}: {exc}"
    finally:
        _guard_active = False
        try:
            fifo.close()
            sink.close()
        finally:
            cleanup(data_dir)
    if status == JobStatus.SUCCESSFUL and not fifo.complete:
        status, reason = JobStatus.ERROR, f"events incomplete: {fifo.problem()}"
    if sink.lost.is_set():
        status, reason = JobStatus.LOST, "job was taken away from this worker (reaped as lost)"
    return Outcome(
        status, rc, reason, sink.summary, sink.stored, sink.max_counter, sink.lag_p95_ms()
    )


def _run_ansible(kwargs: dict) -> ansible_runner.Runner:
    """``ansible_runner.run`` with the worker's own settings left out of ansible-playbook's
    environment (the runner seeds it with all of ``os.environ``: portal/core/childenv.py),
    and ansible-playbook started through the portal's launcher (a faster start)."""
    runner = ansible_runner.interface.init_runner(**kwargs)
    runner.config.env = without_inherited_secrets(runner.config.env)
    runner.config.command = controller_command(runner.config.command, runner.config.env.get("PATH"))
    runner.run()
    return runner


def _runner_kwargs(job: Job, data_dir: Path, sink: EventSink, watchdog: Watchdog) -> dict:
    # The run's tag reaches its modules on the nodes through our callback (awx_display.py).
    cmdline = ["--check"] if job.check_mode else []
    envvars = {
        **orphans.run_environment(job),
        "ANSIBLE_CONFIG": str(data_dir / "ansible.cfg"),
        "ANSIBLE_HOME": str(data_dir / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        # ansible-runner appends its own callback dir: ours, first, shadows its awx_display.
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
        "PORTAL_EVENT_FIFO": str(data_dir / "events.fifo"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    return {
        "private_data_dir": str(data_dir),
        "playbook": str(resolve_playbook(job.playbook)),
        "inventory": str(data_dir / "inventory" / "hosts.yml"),
        "limit": job.limit or None,
        "cmdline": " ".join(cmdline),
        "envvars": envvars,
        "event_handler": sink.handle,
        "cancel_callback": watchdog,
        "quiet": True,
        "ident": "run",
        "suppress_env_files": True,
        # ansible-runner's default caches facts in JSON files in the run's artifacts, which
        # no one reads (the data dir goes at the end) and the controller pays for on every
        # host's variables (+4 % on the bench's 50 x 20 job): Ansible's own, in memory.
        "fact_cache_type": "memory",
    }


def _reason(status: str, rc: int | None, job: Job) -> str:
    if status == JobStatus.SUCCESSFUL:
        return ""
    if status == JobStatus.TIMEOUT:
        return f"ended after the {job.timeout}s job timeout or {job.idle_timeout}s without output"
    if status == JobStatus.CANCELED:
        return "canceled on request"
    return f"ansible-playbook exited with rc {rc}"
