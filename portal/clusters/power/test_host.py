"""``test-host``: the project's test hosts (tests/hosts), re-imaged by their harness.

There is no BMC: reimage runs the option ``command`` (an argv, no shell), e.g.
``python -m tests.hosts reimage --run n7 --host t7-host1 --first-boot-url URL``, which
resets the host's container to its base image, installs a first-boot unit that plays the
post-install script from URL, and boots it. There is no network-boot loop to break, so
disable_network_boot has nothing to do. power_state runs the option ``state_command`` (it
prints ``on`` or ``off``), or else says ``on`` when the host's SSH port answers at the
target's address.

Options: ``command`` (required), ``state_command``, ``timeout`` (300 s for the command).
"""

from __future__ import annotations

import logging
import socket
from typing import Any, ClassVar

from portal.clusters.power import POWER_OFF, POWER_ON, PowerError, PowerTarget
from portal.clusters.power import options as opt
from portal.clusters.power.process import last_lines, run_bounded

logger = logging.getLogger(__name__)
OPTIONS = ("command", "state_command", "timeout")
SSH_PORT = 22


class TestHostDriver:
    name: ClassVar[str] = "test-host"

    def check_options(self, options: Any) -> dict[str, Any]:
        options = opt.as_mapping(options)
        opt.refuse_unknown(options, OPTIONS)
        return {
            "command": opt.argv(options, "command", required=True),
            "state_command": opt.argv(options, "state_command", required=False),
            "timeout": opt.integer(options, "timeout", 300, 1, 3600),
        }

    def reimage(self, target: PowerTarget) -> None:
        options = self._options(target)
        self._run(target, options["command"], options["timeout"], "re-image")

    def disable_network_boot(self, target: PowerTarget) -> None:
        self._options(target)  # a node with broken options is still reported
        logger.info("%s: test host, no network boot to switch off", target.node)

    def power_state(self, target: PowerTarget) -> str:
        options = self._options(target)
        if options["state_command"]:
            answer = self._run(target, options["state_command"], 30, "power state").strip()
            if answer not in (POWER_ON, POWER_OFF):
                raise PowerError(f"{target.node}: power state command printed {answer!r}")
            return answer
        if not target.address:
            raise PowerError(f"{target.node}: no state_command and no address to probe")
        return POWER_ON if _answers(target.address, SSH_PORT) else POWER_OFF

    def _options(self, target: PowerTarget) -> dict[str, Any]:
        return opt.for_target(self.check_options, target)

    def _run(self, target: PowerTarget, argv: list[str], timeout: int, what: str) -> str:
        label = f"{target.node}: test-host {what}"
        result = run_bounded(argv, timeout=timeout, what=label, secrets=[target.password])
        if result.returncode != 0:
            output = last_lines(result.stderr or result.stdout) or "no output"
            raise PowerError(f"{label} failed (exit {result.returncode}): {output}")
        return result.stdout


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False
