"""A simulated BMC (OpenIPMI's ipmi_sim) whose power actions really act on a test host.

    with start_ipmi_sim("n7", "t7-host1", "admin", "s3cret") as bmc:
        # ipmitool -I lanplus -H 127.0.0.1 -p {bmc.port} -U admin -E -C 3 chassis power cycle

ipmi_sim speaks IPMI 2.0 (lanplus) on 127.0.0.1 at a free UDP port and hands every chassis
action to a control script (its ``chassis_control``: ``<mc> get power|boot``, ``<mc> set
power 0|1 | boot pxe|default|none | reset 1``). The script keeps what a BMC keeps (power,
the next boot device) and drives the host through the harness: power off stops it, power
on boots it as its disk is, and power on (or a reset) with the next boot set to PXE
re-images it (`python -m tests.hosts reimage`), with the first-boot URL a network install
environment would hand to the installer, then forgets PXE (a one-time boot override).
Boots run in the background, as on a real BMC that answers before the machine is up; each
action is logged to ``actions_log``.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .machine import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]
CIPHER_SUITE = 3  # ipmitool otherwise asks for the suites first, which ipmi_sim never answers

HARNESS_SH = r"""# sourced by chassis_control: one power action at a time, in order, logged
dir=%(dir)s
harness() {
    cd %(repo)s && flock -w 300 "$dir/lock" %(python)s -m tests.hosts "$@" \
        --run %(run)s --host %(host)s >>"$dir/actions.log" 2>&1 </dev/null
}
"""

CHASSIS_CONTROL_SH = r"""#!/bin/sh
# ipmi_sim chassis control: usage: chassis_control MC get PARM... | MC set PARM VALUE...
set -u
. %(functions)s
note() { echo "$(date +%%T) $*" >>"$dir/actions.log"; }
in_background() {  # a BMC answers before the machine is up; keep ipmi_sim's pipe free
    setsid sh -c '. "$0"; harness "$@"' %(functions)s "$@" >/dev/null 2>&1 </dev/null &
}
boot_host() {  # network boot (one time) re-images, else the disk boots as it is
    if [ "$(cat "$dir/boot")" = pxe ]; then
        echo default >"$dir/boot"
        note reimage
        in_background reimage %(first_boot)s
    else
        note power on
        in_background power on
    fi
}
shift  # the MC's address
op=$1; shift
case $op in
get)
    for parm; do
        case $parm in
        power) echo "power:$(cat "$dir/power")" ;;
        boot) echo "boot:$(cat "$dir/boot")" ;;
        *) echo "unknown parameter $parm"; exit 1 ;;
        esac
    done ;;
set)
    while [ $# -ge 2 ]; do
        case $1 in
        power)
            echo "$2" >"$dir/power"
            if [ "$2" = 1 ]; then
                boot_host
            else
                note power off
                harness power off
            fi ;;
        reset) if [ "$2" = 1 ]; then boot_host; fi ;;
        boot) echo "$2" >"$dir/boot" ;;
        *) echo "unknown parameter $1"; exit 1 ;;
        esac
        shift 2
    done ;;
*) echo "unknown operation $op"; exit 1 ;;
esac
"""


class IpmiSim:
    def __init__(self, process: subprocess.Popen, port: int, directory: Path):
        self.process, self.port, self.directory = process, port, directory
        self.address = "127.0.0.1"

    @property
    def actions_log(self) -> Path:
        return self.directory / "actions.log"

    def actions(self) -> list[str]:
        try:
            return self.actions_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lan_conf(port: int, username: str, password: str, control: Path) -> str:
    for value in (username, password):
        if not value or any(c in value for c in ' "\n\\'):
            raise HarnessError("ipmi_sim user names and passwords: no spaces or quotes")
    auths = "none md2 md5 straight"
    return f"""name "portal-test-bmc"
set_working_mc 0x20
startlan 1
  addr 127.0.0.1 {port}
  priv_limit admin
  allowed_auths_callback {auths}
  allowed_auths_user {auths}
  allowed_auths_operator {auths}
  allowed_auths_admin {auths}
  guid a123456789abcdefa123456789abcdef
endlan
chassis_control "{control} 0x20"
user 2 true "{username}" "{password}" admin 10 {auths}
"""


EMULATION = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


RECORD_ONLY_SH = r"""# sourced by chassis_control: no test host, only a record of what would be done
dir=%(dir)s
harness() {
    echo "$(date +%%T) harness $*" >>"$dir/actions.log"
}
"""


def write_control(
    directory: Path, run_id: str | None, host: str | None, first_boot_url: str | None
) -> Path:
    functions = directory / "functions"
    functions.write_text(
        (HARNESS_SH if run_id and host else RECORD_ONLY_SH)
        % {
            "dir": shlex.quote(str(directory)),
            "python": shlex.quote(sys.executable),
            "repo": shlex.quote(str(REPO_ROOT)),
            "run": shlex.quote(run_id or ""),
            "host": shlex.quote(host or ""),
        }
    )
    first_boot = f"--first-boot-url {shlex.quote(first_boot_url)}" if first_boot_url else ""
    control = directory / "chassis_control"
    control.write_text(
        CHASSIS_CONTROL_SH % {"functions": shlex.quote(str(functions)), "first_boot": first_boot}
    )
    control.chmod(0o700)
    (directory / "power").write_text("1\n")  # the host runs when its BMC starts
    (directory / "boot").write_text("default\n")
    return control


@contextmanager
def start_ipmi_sim(
    run_id: str | None, host: str | None, username: str, password: str, first_boot_url=None
):
    """ipmi_sim for one host of a run, on 127.0.0.1; stopped when the block ends. Without a
    run and host it drives nothing and only records the harness commands it would run."""
    directory = Path(tempfile.mkdtemp(prefix="ipmi-sim-"))
    (directory / "state").mkdir()
    control = write_control(directory, run_id, host, first_boot_url)
    port = free_udp_port()
    conf = directory / "lan.conf"
    conf.write_text(lan_conf(port, username, password, control))
    conf.chmod(0o600)
    (directory / "sim.emu").write_text(EMULATION)
    with open(directory / "ipmi_sim.log", "ab") as log:
        process = subprocess.Popen(
            ["ipmi_sim", "-c", conf, "-f", directory / "sim.emu", "-s", directory / "state", "-n"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sim = IpmiSim(process, port, directory)
    try:
        wait_listening(sim, username, password)
        yield sim
    finally:
        sim.stop()
        shutil.rmtree(directory, ignore_errors=True)


def wait_listening(sim: IpmiSim, username: str, password: str, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sim.process.poll() is not None:
            log = (sim.directory / "ipmi_sim.log").read_text(errors="replace")
            raise HarnessError(f"ipmi_sim exited {sim.process.returncode}: {log[-2000:]}")
        probe = subprocess.run(
            [*ipmitool_argv(sim, username), "-R", "1", "-N", "1", "chassis", "power", "status"],
            env={"PATH": "/usr/bin:/bin", "IPMI_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise HarnessError(f"ipmi_sim did not answer on 127.0.0.1:{sim.port} in {timeout:.0f} s")


def ipmitool_argv(sim: IpmiSim, username: str) -> list[str]:
    """ipmitool against this BMC; the password goes in IPMI_PASSWORD."""
    return [
        "ipmitool",
        "-I",
        "lanplus",
        "-H",
        sim.address,
        "-p",
        str(sim.port),
        "-U",
        username,
        "-E",
        "-C",
        str(CIPHER_SUITE),
    ]
