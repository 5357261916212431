"""``ipmi``: ipmitool over IPMI 2.0 (lanplus).

reimage: ``chassis bootdev pxe`` (next boot only), then ``chassis power cycle``, or
``chassis power on`` when the chassis is off. disable_network_boot: ``chassis bootdev disk
options=persistent``. The password reaches ipmitool in its environment (``-E``:
IPMI_PASSWORD), never on its command line, and is masked in any message.

Options: ``port`` (623), ``cipher_suite`` (0-17; default: ipmitool asks the BMC, which costs
a round trip some BMCs never answer), ``efiboot`` (false: UEFI boot flags with bootdev),
``timeout`` (30 s per ipmitool call).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from portal.clusters.power import POWER_OFF, POWER_ON, PowerError, PowerTarget
from portal.clusters.power import options as opt
from portal.clusters.power.process import last_lines, run_bounded

OPTIONS = ("port", "cipher_suite", "efiboot", "timeout")
SESSION_FAILED = "Unable to establish IPMI v2 / RMCP+ session"


class IpmiDriver:
    name: ClassVar[str] = "ipmi"

    def check_options(self, options: Any) -> dict[str, Any]:
        options = opt.as_mapping(options)
        opt.refuse_unknown(options, OPTIONS)
        return {
            "port": opt.integer(options, "port", 623, 1, 65535),
            "cipher_suite": opt.integer(options, "cipher_suite", None, 0, 17),
            "efiboot": opt.boolean(options, "efiboot", False),
            "timeout": opt.integer(options, "timeout", 30, 1, 600),
        }

    def reimage(self, target: PowerTarget) -> None:
        was = self.power_state(target)
        self._ipmitool(target, "chassis", "bootdev", "pxe", *self._boot_flags(target))
        if was == POWER_ON:
            self._ipmitool(target, "chassis", "power", "cycle")
        else:
            self._ipmitool(target, "chassis", "power", "on")

    def disable_network_boot(self, target: PowerTarget) -> None:
        self._ipmitool(
            target, "chassis", "bootdev", "disk", *self._boot_flags(target, "persistent")
        )

    def power_state(self, target: PowerTarget) -> str:
        answer = self._ipmitool(target, "chassis", "power", "status").stdout.strip()
        if answer.endswith(" on"):
            return POWER_ON
        if answer.endswith(" off"):
            return POWER_OFF
        raise PowerError(f"{target.node}: BMC answered an unknown power status: {answer!r}")

    def command(self, target: PowerTarget, *args: str) -> list[str]:
        """ipmitool's argv for ``args`` against the target's BMC (no password in it)."""
        if not target.address:
            raise PowerError(f"{target.node}: no BMC address for the ipmi driver")
        options = opt.for_target(self.check_options, target)
        argv = ["ipmitool", "-I", "lanplus", "-H", target.address, "-p", str(options["port"])]
        if target.username:
            argv += ["-U", target.username]
        argv.append("-E")  # the password comes from IPMI_PASSWORD
        if options["cipher_suite"] is not None:
            argv += ["-C", str(options["cipher_suite"])]
        return [*argv, *args]

    def _boot_flags(self, target: PowerTarget, *flags: str) -> list[str]:
        efiboot = opt.for_target(self.check_options, target)["efiboot"]
        chosen = [*flags, *(["efiboot"] if efiboot else [])]
        return [f"options={','.join(chosen)}"] if chosen else []

    def _ipmitool(self, target: PowerTarget, *args: str):
        argv = self.command(target, *args)
        timeout = opt.for_target(self.check_options, target)["timeout"]
        what = f"{target.node}: ipmitool {' '.join(args)} ({target.address})"
        result = run_bounded(
            argv, timeout=timeout, what=what, env=_env(target.password), secrets=[target.password]
        )
        if result.returncode != 0:
            raise PowerError(_failure(what, result.returncode, result.stderr or result.stdout))
        return result


def _env(password: str) -> Mapping[str, str]:
    return {"IPMI_PASSWORD": password}


def _failure(what: str, returncode: int, output: str) -> str:
    reason = f"{what} failed (exit {returncode}): {last_lines(output) or 'no output'}"
    if SESSION_FAILED in output:
        reason += (
            " - no IPMI session: wrong username or password, the BMC unreachable, or a cipher"
            " suite it does not offer (option cipher_suite)"
        )
    return reason
