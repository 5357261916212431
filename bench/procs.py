"""The processes the bench starts (web server, Celery workers), and nothing else.

Every process is started in its own session and remembered; :func:`stop_all` ends each of
them and every descendant it had (pool children, ansible-playbook and its forks), by pid,
on every exit path (normal end, exception, SIGTERM/SIGINT, interpreter exit).
"""

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.paths import ROOT
from portal.jobs.processes import descendants

PROC = Path("/proc")
_started: list["Service"] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cmdline(pid: int) -> str:
    try:
        return (
            (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def rss_kb(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Service:
    """One long-running subprocess with its log file."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path | None):
        """With ``log_dir`` None the process shares this one's stdout and stderr."""
        self.name = name
        self.argv, self.env, self.log_dir = argv, env, log_dir
        self.marker = " ".join(argv[1:])  # in the command line of it and its forks
        self.known_children: set[int] = set()
        self.log_path = log_dir / f"{name}.log" if log_dir else None
        self._log = self.log_path.open("w") if self.log_path else None
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )
        _started.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""
        except OSError:
            return ""

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited (rc {self.process.returncode}) "
                    f"before {what}:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if condition():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}:\n{self.log_tail()}")

    def remember_children(self) -> None:
        self.known_children = set(descendants(self.pid))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process (warm shutdown), then SIGKILL it and every descendant left."""
        if self in _started:
            _started.remove(self)
        tree = getattr(self, "tree_at_stop", set())
        tree |= set(descendants(self.pid)) if self.alive() else set()
        # Long-lived children remembered at start (a worker's pool processes) outlive a main
        # process that was killed; they and what they run are ours too.
        for pid in self.known_children:
            if self.marker in cmdline(pid):
                tree |= {pid, *descendants(pid)}
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Children re-parented to init after the main process ended are still ours: only
        # pids recorded as descendants of this service are signalled.
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self._log:
            self._log.close()


def stop_all(grace: float = 8.0) -> None:
    """SIGTERM every service at once, then give them ``grace`` seconds in all."""
    services = list(reversed(_started))
    for service in services:
        service.tree_at_stop = set(descendants(service.pid)) if service.alive() else set()
        if service.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(service.pid, signal.SIGTERM)
    until = time.monotonic() + grace
    for service in services:
        with contextlib.suppress(Exception):
            service.stop(grace=max(0.5, until - time.monotonic()))


def _on_signal(signum, frame):
    stop_all()
    sys.exit(128 + signum)


def die_with_parent() -> None:
    """Linux: SIGTERM this process when the process that started it dies (even SIGKILLed),
    so its cleanup still runs."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGTERM)


def install_cleanup() -> None:
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command's name (which may hold spaces), or None."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """CPU seconds of one process (user + system), 0 if it is gone."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def machine_busy() -> float:
    """CPU seconds the whole machine spent not idle so far (all cores, /proc/stat)."""
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait


def minor_faults(pid: int) -> int:
    """Minor page faults of one process so far (a copy-on-write copy is one), 0 if gone."""
    fields = _stat_fields(pid)
    return int(fields[7]) if fields else 0


def pids_named(name: str) -> list[int]:
    """Every process whose command (comm) is ``name`` (e.g. the PostgreSQL server's
    backends, the Redis server): the services the bench uses but did not start."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found
