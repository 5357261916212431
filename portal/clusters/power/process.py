"""Run a driver's command bounded in time, with secrets kept out of argv and messages."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence

from portal.clusters.power import PowerError
from portal.core.childenv import child_environment

MASK = "********"


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every (non-empty) secret replaced by a mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def run_bounded(
    argv: Sequence[str],
    *,
    timeout: float,
    what: str,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run argv (no shell) in its own process group, ended whole at the timeout, with the
    allowed part of our environment and ``env`` on top (portal/core/childenv.py).

    ``what`` names the action in the PowerError of a timeout or a missing program; a
    non-zero exit is returned for the driver to explain."""
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_environment(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise PowerError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise PowerError(f"{what}: no answer within {timeout:g} s") from None
    except BaseException:
        _kill_group(process)
        raise
    secrets = tuple(secrets)
    return subprocess.CompletedProcess(
        list(argv), process.returncode, mask(stdout, secrets), mask(stderr, secrets)
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def last_lines(text: str, count: int = 3, limit: int = 500) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:])[-limit:]
