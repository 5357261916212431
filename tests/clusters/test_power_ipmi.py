"""The ipmi power driver: ipmitool's argv (no password in it), its answers and failures,
against a stand-in ipmitool and against OpenIPMI's ipmi_sim BMC simulator."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from portal.clusters.power import PowerError, PowerTarget, get_driver
from portal.clusters.power.ipmi import IpmiDriver
from tests.hosts.ipmi_sim import start_ipmi_sim
from tests.hosts.machine import HarnessError, ensure_machine_packages
from tests.waiting import wait_for

PASSWORD = "pa55-Secret"

# Stands in for ipmitool: records its argv and environment, answers as told by env.
FAKE_IPMITOOL = """#!{python}
import json, os, sys, time
call = {{"argv": sys.argv[1:], "password": os.environ.get("IPMI_PASSWORD")}}
call["env"] = sorted(os.environ)
with open(os.environ["FAKE_IPMITOOL_LOG"], "a") as log:
    log.write(json.dumps(call) + "\\n")
mode = os.environ.get("FAKE_IPMITOOL_MODE", "on")
if mode == "hang":
    time.sleep(60)
if mode == "refused":
    sys.stderr.write("Error: Unable to establish IPMI v2 / RMCP+ session\\n")
    sys.exit(1)
if mode == "leaky":
    sys.stderr.write("bad password " + os.environ["IPMI_PASSWORD"] + "\\n")
    sys.exit(1)
if sys.argv[-3:] == ["chassis", "power", "status"]:
    print("Chassis Power is " + mode)
"""


def target(**options):
    return PowerTarget(
        node="pve-1",
        mac="52:54:00:00:00:01",
        address="bmc-1.example",
        username="admin",
        password=PASSWORD,
        options=options,
    )


@pytest.fixture
def fake_ipmitool(tmp_path, monkeypatch, settings):
    program = tmp_path / "bin" / "ipmitool"
    program.parent.mkdir()
    program.write_text(FAKE_IPMITOOL.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_IPMITOOL_LOG", str(log))
    # The portal's children see only an allow-list of its environment (core/childenv.py).
    settings.CHILD_ENV_PASSTHROUGH = {"FAKE_IPMITOOL_LOG", "FAKE_IPMITOOL_MODE"}

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def test_the_registry_gives_the_ipmi_driver():
    assert isinstance(get_driver("ipmi"), IpmiDriver)


def test_argv_holds_the_bmc_and_user_but_never_the_password():
    argv = IpmiDriver().command(target(port=6230, cipher_suite=3), "chassis", "power", "status")
    assert argv == [
        "ipmitool",
        "-I",
        "lanplus",
        "-H",
        "bmc-1.example",
        "-p",
        "6230",
        "-U",
        "admin",
        "-E",
        "-C",
        "3",
        "chassis",
        "power",
        "status",
    ]
    assert PASSWORD not in " ".join(argv)


def test_reimage_of_a_running_node_sets_pxe_once_then_cycles(fake_ipmitool):
    IpmiDriver().reimage(target(efiboot=True))
    calls = fake_ipmitool()
    assert [c["argv"][-4:] for c in calls] == [
        ["-E", "chassis", "power", "status"],
        ["chassis", "bootdev", "pxe", "options=efiboot"],
        ["-E", "chassis", "power", "cycle"],
    ]
    assert all(c["password"] == PASSWORD for c in calls)  # from the environment, -E
    assert not any(PASSWORD in " ".join(c["argv"]) for c in calls)


def test_ipmitool_sees_none_of_the_portals_settings(fake_ipmitool, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "not-for-ipmitool")
    monkeypatch.setenv("DATABASE_URL", "postgres://portal:pw@db/portal")
    IpmiDriver().power_state(target())
    env = set(fake_ipmitool()[0]["env"])
    assert {"IPMI_PASSWORD", "PATH", "FAKE_IPMITOOL_LOG"} <= env
    assert not env & {"SECRET_KEY", "DATABASE_URL"}


def test_reimage_of_a_node_that_is_off_powers_it_on(fake_ipmitool, monkeypatch):
    monkeypatch.setenv("FAKE_IPMITOOL_MODE", "off")
    IpmiDriver().reimage(target())
    assert [c["argv"][-3:] for c in fake_ipmitool()] == [
        ["chassis", "power", "status"],
        ["chassis", "bootdev", "pxe"],
        ["chassis", "power", "on"],
    ]


def test_disable_network_boot_makes_disk_the_persistent_boot_device(fake_ipmitool):
    IpmiDriver().disable_network_boot(target())
    assert fake_ipmitool()[0]["argv"][-4:] == ["chassis", "bootdev", "disk", "options=persistent"]


def test_power_state(fake_ipmitool, monkeypatch):
    assert IpmiDriver().power_state(target()) == "on"
    monkeypatch.setenv("FAKE_IPMITOOL_MODE", "off")
    assert IpmiDriver().power_state(target()) == "off"


def test_no_session_is_explained(fake_ipmitool, monkeypatch):
    monkeypatch.setenv("FAKE_IPMITOOL_MODE", "refused")
    with pytest.raises(PowerError) as caught:
        IpmiDriver().reimage(target())
    reason = caught.value.reason
    assert reason.startswith("pve-1: ipmitool chassis power status (bmc-1.example) failed (exit 1)")
    assert "wrong username or password" in reason


def test_a_password_in_ipmitools_output_is_masked(fake_ipmitool, monkeypatch):
    monkeypatch.setenv("FAKE_IPMITOOL_MODE", "leaky")
    with pytest.raises(PowerError) as caught:
        IpmiDriver().power_state(target())
    assert PASSWORD not in str(caught.value)
    assert "bad password ********" in caught.value.reason


def test_a_bmc_that_does_not_answer_is_bounded(fake_ipmitool, monkeypatch):
    monkeypatch.setenv("FAKE_IPMITOOL_MODE", "hang")
    with pytest.raises(PowerError, match=r"no answer within 1 s"):
        IpmiDriver().power_state(target(timeout=1))


def test_missing_ipmitool_is_a_power_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PowerError, match="cannot run ipmitool"):
        IpmiDriver().power_state(target())


def test_no_bmc_address():
    with pytest.raises(PowerError, match="no BMC address"):
        IpmiDriver().power_state(PowerTarget(node="pve-1", mac="52:54:00:00:00:01"))


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"port": 0}, "port"),
        ({"port": "623"}, "port"),
        ({"cipher_suite": 18}, "cipher_suite"),
        ({"efiboot": "yes"}, "efiboot"),
        ({"timeout": True}, "timeout"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_options_name_the_key(options, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        IpmiDriver().check_options(options)


def test_options_get_their_defaults():
    assert IpmiDriver().check_options({}) == {
        "port": 623,
        "cipher_suite": None,
        "efiboot": False,
        "timeout": 30,
    }


# --- against ipmi_sim (OpenIPMI's BMC simulator), recording what it would do ----------------


@pytest.fixture(scope="module")
def bmc():
    if os.geteuid() != 0:
        pytest.skip("installing ipmitool/openipmi needs root")
    try:
        ensure_machine_packages()
    except HarnessError as error:
        pytest.skip(f"no ipmitool/ipmi_sim: {error}")
    with start_ipmi_sim(None, None, "admin", PASSWORD) as sim:
        yield sim


def sim_target(bmc, password=PASSWORD):
    return PowerTarget(
        node="pve-1",
        mac="52:54:00:00:00:01",
        address=bmc.address,
        username="admin",
        password=password,
        options={"port": bmc.port, "cipher_suite": 3, "timeout": 20},
    )


def test_ipmi_sim_reimage_boots_from_the_network_once(bmc):
    driver = IpmiDriver()
    assert driver.power_state(sim_target(bmc)) == "on"
    before = len(bmc.actions())
    driver.reimage(sim_target(bmc))
    # The BMC powered off and booted from the network (a re-image), then forgot PXE.
    wait_for(lambda: "harness reimage" in actions(bmc, before), 10, 0.1, "the re-image")
    assert actions(bmc, before) == [
        "power off",
        "harness power off",
        "reimage",
        "harness reimage",
    ]
    assert (bmc.directory / "boot").read_text().strip() == "default"
    assert driver.power_state(sim_target(bmc)) == "on"


def actions(bmc, since):
    return [line.split(" ", 1)[1] for line in bmc.actions()[since:]]


def test_ipmi_sim_disable_network_boot(bmc):
    driver = IpmiDriver()
    driver.reimage(sim_target(bmc))
    driver.disable_network_boot(sim_target(bmc))
    assert (bmc.directory / "boot").read_text().strip() == "default"


def test_ipmi_sim_refuses_a_wrong_password(bmc):
    with pytest.raises(PowerError) as caught:
        IpmiDriver().power_state(sim_target(bmc, password="not-it"))
    assert "Unable to establish IPMI v2 / RMCP+ session" in caught.value.reason
    assert "not-it" not in caught.value.reason
