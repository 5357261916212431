"""The test-host power driver (its command, bounded, no shell; power state) and the
drivers' registry."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from portal.clusters import power
from portal.clusters.power import DRIVER_CHOICES, PowerError, PowerTarget, get_driver
from portal.clusters.power import test_host as test_host_module

Driver = test_host_module.TestHostDriver  # not named Test*: pytest would collect it


def target(address="", **options):
    return PowerTarget(node="t9-host1", mac="52:54:00:00:00:09", address=address, options=options)


def recorder(path):
    """An argv that writes its own arguments to path as JSON."""
    code = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    return [sys.executable, "-c", code, str(path)]


def test_reimage_runs_the_command_as_given_without_a_shell(tmp_path):
    out = tmp_path / "argv.json"
    url = "http://10.213.9.1:8000/api/clusters/post-install?mac={mac}; rm -rf /"
    Driver().reimage(target(command=[*recorder(out), "reimage", "--first-boot-url", url]))
    assert json.loads(out.read_text()) == ["reimage", "--first-boot-url", url]


def test_a_failing_command_is_a_power_error_with_its_output():
    command = [sys.executable, "-c", "import sys; sys.exit('error: run n9 has no host x')"]
    with pytest.raises(PowerError) as caught:
        Driver().reimage(target(command=command))
    assert caught.value.reason == (
        "t9-host1: test-host re-image failed (exit 1): error: run n9 has no host x"
    )


def test_the_command_is_bounded():
    command = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(PowerError, match="t9-host1: test-host re-image: no answer within 1 s"):
        Driver().reimage(target(command=command, timeout=1))


def test_disable_network_boot_has_nothing_to_do_but_checks_the_options():
    Driver().disable_network_boot(target(command=["true"]))
    with pytest.raises(PowerError, match="'command'"):
        Driver().disable_network_boot(target())


def test_power_state_from_the_state_command():
    say = [sys.executable, "-c"]
    assert (
        Driver().power_state(target(command=["true"], state_command=[*say, "print('off')"]))
        == "off"
    )
    assert (
        Driver().power_state(target(command=["true"], state_command=[*say, "print('on')"])) == "on"
    )
    with pytest.raises(PowerError, match="printed 'maybe'"):
        Driver().power_state(target(command=["true"], state_command=[*say, "print('maybe')"]))


def test_power_state_is_on_when_the_hosts_ssh_port_answers(monkeypatch):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setattr(test_host_module, "SSH_PORT", listening.getsockname()[1])
        assert Driver().power_state(target("127.0.0.1", command=["true"])) == "on"
    assert Driver().power_state(target("127.0.0.1", command=["true"])) == "off"


@pytest.mark.parametrize(
    "options",
    [{}, {"command": "python -m tests.hosts"}, {"command": []}, {"command": ["ok", 3]}],
)
def test_command_must_be_an_argv(options):
    with pytest.raises(ValueError, match="'command' must be a non-empty list of strings"):
        Driver().check_options(options)


def test_options_with_defaults():
    assert Driver().check_options({"command": ["x"]}) == {
        "command": ["x"],
        "state_command": None,
        "timeout": 300,
    }


# --- the registry ---------------------------------------------------------------------------


def test_every_choice_has_its_driver():
    for name, _label in DRIVER_CHOICES:
        assert get_driver(name).name == name


def test_an_unknown_driver_is_a_power_error_not_a_key_error():
    with pytest.raises(PowerError) as caught:
        get_driver("wol")
    assert caught.value.reason == ("unknown power driver 'wol' (known: ipmi, redfish, test-host)")
    assert str(caught.value) == caught.value.reason


def test_options_must_be_an_object():
    for name, _label in DRIVER_CHOICES:
        with pytest.raises(ValueError, match="power options must be a JSON object"):
            get_driver(name).check_options(["command"])


def test_the_password_is_not_in_a_targets_repr():
    shown = repr(PowerTarget(node="n", mac="m", password="hunter2"))
    assert "hunter2" not in shown and power.PowerTarget.__name__ in shown


@pytest.mark.parametrize("name", [name for name, _label in DRIVER_CHOICES])
def test_bad_options_at_reimage_are_a_power_error_naming_the_key(name):
    bad = PowerTarget(
        node="pve-9", mac="52:54:00:00:00:09", address="127.0.0.1", options={"bogus": 1}
    )
    with pytest.raises(PowerError) as caught:
        get_driver(name).reimage(bad)
    assert caught.value.reason.startswith("pve-9: unknown power option 'bogus' (known: ")
