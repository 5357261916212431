"""installer_overhead_ratio: the portal's install of a catalogue installer vs the same
``install.sh`` run by hand over SSH, side by side on one test host (issue #15).

Portal (B): ``actions.do_install`` of the repo's ``nginx`` installer (what the admin, the
operator page and ``POST /api/installations/`` call) on a real systemd test host; the
stack's Celery worker runs ``installer_run.yml`` (one task: preflight, the sha256-checked
copy, the wrapper with its timeout and secrets file, the report); wall time from the call to the
installation row saying ``installed``. By hand (A): what an operator would do without the
portal: ``scp -r installers/nginx`` to the host, then ``ssh`` running ``install.sh`` with
the same environment (``SERVER_NAME``, ``LISTEN_PORT``, ``DEBIAN_FRONTEND``,
``PROVISIONING_JOB``) under ``timeout``; wall time of the two commands. Each side runs once
untimed first (the host's first apt run, the portal's first job on the node). Before each side
nginx is removed by ``uninstall.sh`` by hand (untimed; whichever side installed it last), so
both install the packages from the host's local Debian repository; the portal's
installation is then uninstalled through the portal (untimed) so the next one is new. Pairs
alternate their order (AB, BA, ...) so drift hits both; the figure is the median of the
per-pair ratios B/A.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench import phases as bench_phases
from bench import stats
from bench.paths import ROOT

FIGURE = "installer_overhead_ratio"
INSTALLER = "nginx"
INPUTS = {"server_name": "bench.example.test", "listen_port": 8080}
ENVIRONMENT = {
    "SERVER_NAME": "bench.example.test",
    "LISTEN_PORT": "8080",
    "DEBIAN_FRONTEND": "noninteractive",
    "PROVISIONING_JOB": "true",
}
REMOTE_DIR = "/root/bench-installer"


def measure(ctx, pairs: int = 4, minimum: int = 2) -> dict:
    from tests.hosts import boot_hosts, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"test hosts unavailable: {reason}")
    portal_ms: list[float] = []
    hand_ms: list[float] = []
    phases: dict[str, list[float]] = {}
    with boot_hosts(1) as pool:
        pool.apt_repo.wait()
        host = pool[0]
        node = _node(host, pool.ssh_key_path)
        by_hand = ByHand(host)
        warm_up = time.monotonic()
        by_hand.install()  # warm-up: the host's first apt run, untimed
        by_hand.uninstall()
        warm_up = time.monotonic() - warm_up
        # and the portal's first install on the node, untimed: in one full run the first
        # pairs, portal first, were 1.46, 1.29 against a median of 1.1 after them
        by_hand.clean_then(lambda node: _portal(node, {}))(node)
        while ctx.another(
            len(portal_ms), minimum, _pair_seconds(portal_ms, hand_ms, warm_up), "install"
        ):
            portal = by_hand.clean_then(lambda node: _portal(node, phases))
            sides = [("portal", portal), ("hand", by_hand.timed_install)]
            if len(portal_ms) % 2:
                sides.reverse()
            for side, run in sides:
                (portal_ms if side == "portal" else hand_ms).append(run(node) * 1000)
            if len(portal_ms) >= pairs or ctx.decided(FIGURE, _ratios(portal_ms, hand_ms), minimum):
                break
    ratios = _ratios(portal_ms, hand_ms)
    return {
        "figures": {FIGURE: (round(stats.median(ratios), 3), "x")},
        "details": {
            FIGURE: {
                "method": "do_install of installers/nginx (real worker, installer_run.yml over "
                "SSH to one nspawn test host, packages from its local Debian repository) -> "
                "installation installed, vs scp -r + ssh running the same install.sh with "
                "the same environment; nginx removed before each side; median of per-pair "
                "ratios, pairs alternating AB/BA",
                "pairs": len(ratios),
                "ratios": [round(r, 3) for r in ratios],
                **ctx.verdict_spread(FIGURE, ratios),
                "portal_ms": stats.summary(portal_ms),
                "by_hand_ms": stats.summary(hand_ms),
                "portal_phases_median_ms": bench_phases.medians(phases),
            }
        },
    }


def _ratios(portal_ms: list[float], hand_ms: list[float]) -> list[float]:
    return [b / a for b, a in zip(portal_ms, hand_ms, strict=True)]


def _pair_seconds(portal_ms: list[float], hand_ms: list[float], warm_up: float) -> float:
    if not portal_ms:
        # the warm-up (the host's first install + uninstall by hand, the slowest) is one
        # side and its clean-up; the portal's side takes about 1.4 times as long
        return 2.5 * warm_up
    # both sides plus their untimed uninstalls
    return 2 * (portal_ms[-1] + hand_ms[-1]) / 1000


def _node(host, key_path):
    from portal.nodes.actions import do_record_host_key
    from portal.nodes.models import Credential, Node

    credential = Credential.objects.create(
        name=f"bench-installer-{host.name}",
        kind="ssh_key",
        username="root",
        secret=Path(key_path).read_text(),
    )
    node = Node.objects.create(
        name=f"bench-installer-{host.name}",
        address=host.address,
        ssh_port=host.ssh_port,
        ssh_user="root",
        purpose="fleet_host",
        credential=credential,
    )
    return do_record_host_key(node)


def _portal(node, phases: dict[str, list[float]]) -> float:
    """Seconds from do_install to the installation being installed (its phases added to
    ``phases``); then uninstalled again through the portal (untimed)."""
    from django.contrib.auth import get_user_model

    from portal.installers import actions

    user, _ = get_user_model().objects.get_or_create(username="bench-installer")
    started, started_at = time.monotonic(), time.time()
    launched = actions.do_install([node], INSTALLER, INPUTS, by=user)
    installation = _wait(launched.installations[0].pk, ("installed",))
    elapsed = time.monotonic() - started
    settled = installation.updated_at.timestamp()
    bench_phases.add(phases, installation.current_job, started_at, settled)
    actions.do_uninstall(installation, by=user)
    _wait(installation.pk, ("uninstalled",))
    return elapsed


def _wait(installation_id: int, wanted: tuple[str, ...], timeout: float = 600.0):
    from portal.installers.models import Installation

    settled = ("installed", "uninstalled", "failed", "rejected", "needs_operator")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        installation = Installation.objects.get(pk=installation_id)
        if installation.status in settled:
            if installation.status not in wanted:
                raise RuntimeError(
                    f"installation {installation_id} {installation.status}: "
                    f"{installation.reason}\n{installation.log_tail}"
                )
            return installation
        time.sleep(0.02)
    raise TimeoutError(f"installation {installation_id} not {wanted} after {timeout:.0f}s")


class ByHand:
    """An operator without the portal: copy the installer, run it over SSH."""

    def __init__(self, host):
        self.host = host
        self.source = ROOT / "installers" / INSTALLER

    def clean_then(self, run):
        """``run`` on a node without nginx (whoever installed it last), cleaned untimed."""

        def cleaned(node) -> float:
            self.uninstall()
            return run(node)

        return cleaned

    def timed_install(self, _node=None) -> float:
        self.uninstall()
        started = time.monotonic()
        self.install()
        return time.monotonic() - started

    def install(self) -> None:
        from tests.hosts.containers import SSH_OPTIONS

        self._run(["rm", "-rf", REMOTE_DIR], check=True)
        copy = [
            "scp",
            "-q",
            "-r",
            *SSH_OPTIONS,
            "-i",
            str(self.host.ssh_key_path),
            "-P",
            str(self.host.ssh_port),
            str(self.source),
            f"root@{self.host.address}:{REMOTE_DIR}",
        ]
        subprocess.run(copy, check=True, capture_output=True, timeout=120)
        self._script("install.sh", "timeout -k 10 600 ")

    def uninstall(self) -> None:
        self._script("uninstall.sh", "")  # the copy the last install left

    def _script(self, script: str, prefix: str) -> None:
        exports = " ".join(f"{name}={value}" for name, value in ENVIRONMENT.items())
        result = self._run(f"cd {REMOTE_DIR} && {exports} {prefix}bash {script} </dev/null")
        if result.returncode:
            raise RuntimeError(
                f"{script} by hand exited {result.returncode}: {result.stderr[-2000:]}"
            )

    def _run(self, command, check=False):
        return self.host.run(command, check=check, timeout=900)
