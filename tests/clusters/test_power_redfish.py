"""The redfish power driver against sushy-tools' Redfish emulator (its fake systems driver,
over HTTPS with basic authentication) and against recorded BMC answers (DMTF mockup
shapes: several systems, ETags, advertised reset targets and types, @Message.ExtendedInfo
errors) replayed by a local server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portal.clusters.power import PowerError, PowerTarget, get_driver
from portal.clusters.power.redfish import RedfishDriver
from tests.waiting import wait_for

PASSWORD = "Redfish-pa55"
SYSTEM_UUID = "27946b59-9e44-4fa7-8e91-f3527a1ef094"  # on
OFF_UUID = "5c0bfa0e-1b6b-4b55-9c2d-2f1b8a2c9e11"  # off
EMULATOR = Path(sys.executable).with_name("sushy-emulator")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- sushy-tools' emulator ------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """sushy-emulator --fake on 127.0.0.1 over HTTPS (a self-signed certificate), one system."""
    if not EMULATOR.exists():
        pytest.skip("sushy-tools is not installed (the dev extra has it)")
    import bcrypt

    directory = tmp_path_factory.mktemp("sushy")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    (directory / "htpasswd").write_text(f"admin:{hashed}\n")
    systems = [
        {"uuid": SYSTEM_UUID, "name": "pve-1", "power_state": "On", "nics": []},
        {"uuid": OFF_UUID, "name": "pve-2", "power_state": "Off", "nics": []},
    ]
    (directory / "emulator.conf").write_text(
        f"SUSHY_EMULATOR_AUTH_FILE = {str(directory / 'htpasswd')!r}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(directory / 'state')!r}\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
    )
    port = free_port()
    with open(directory / "emulator.log", "ab") as log:
        process = subprocess.Popen(
            [
                EMULATOR,
                "--fake",
                "--config",
                directory / "emulator.conf",
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "--ssl-certificate",
                cert,
                "--ssl-key",
                key,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(address, cert), 30, 0.2, "sushy-emulator to answer")
        yield {"address": address, "ca_file": str(cert), "directory": directory}
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def answers(address, cert) -> bool:
    import ssl

    try:
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://{address}/redfish/v1", context=context, timeout=2):
            return True
    except OSError:
        return False


def emulated(emulator, password=PASSWORD, **options):
    options.setdefault("system_id", SYSTEM_UUID)
    return PowerTarget(
        node="pve-1",
        mac="52:54:00:00:00:01",
        address=emulator["address"],
        username="admin",
        password=password,
        options={"ca_file": emulator["ca_file"], "timeout": 10, **options},
    )


def boot_of(emulator) -> dict:
    driver_target = emulated(emulator)
    from portal.clusters.power.redfish import _Session

    session = _Session(driver_target, RedfishDriver().check_options(driver_target.options))
    return session.system().body["Boot"]


def test_the_registry_gives_the_redfish_driver():
    assert isinstance(get_driver("redfish"), RedfishDriver)


def test_emulator_reimage_sets_pxe_and_restarts(emulator):
    driver = RedfishDriver()
    assert driver.power_state(emulated(emulator)) == "on"

    driver.reimage(emulated(emulator))

    assert boot_of(emulator)["BootSourceOverrideTarget"] == "Pxe"
    # The emulator's fake system is off while it restarts (for 1-11 s).
    assert driver.power_state(emulated(emulator)) == "off"


def test_emulator_reimage_of_a_system_that_is_off_powers_it_on(emulator):
    driver = RedfishDriver()
    assert driver.power_state(emulated(emulator, system_id=OFF_UUID)) == "off"

    driver.reimage(emulated(emulator, system_id=OFF_UUID))

    wait_for(
        lambda: driver.power_state(emulated(emulator, system_id=OFF_UUID)) == "on",
        20,
        0.5,
        "the emulator's system to power on",
    )


def test_emulator_two_systems_need_system_id(emulator):
    with pytest.raises(PowerError, match=r"has 2 systems .*set the power option system_id"):
        RedfishDriver().power_state(emulated(emulator, system_id=""))


def test_emulator_disable_network_boot(emulator):
    driver = RedfishDriver()
    driver.reimage(emulated(emulator))
    driver.disable_network_boot(emulated(emulator))
    assert boot_of(emulator)["BootSourceOverrideTarget"] == "None"


def test_emulator_refuses_a_wrong_password(emulator):
    with pytest.raises(PowerError) as caught:
        RedfishDriver().power_state(emulated(emulator, password="not-it"))
    reason = caught.value.reason
    assert "HTTP 401: the BMC refused the username or password" in reason
    assert "Incorrect username or password" in reason  # the BMC's own message
    assert "not-it" not in reason


def test_emulator_unknown_system(emulator):
    with pytest.raises(PowerError) as caught:
        RedfishDriver().power_state(emulated(emulator, system_id="nope"))
    assert "/redfish/v1/Systems/nope failed: HTTP 404" in caught.value.reason
    assert "system_id" in caught.value.reason


def test_emulator_certificate_not_trusted_without_ca_file(emulator):
    target = emulated(emulator)
    untrusted = PowerTarget(
        **{**target.__dict__, "options": {"timeout": 10, "system_id": SYSTEM_UUID}}
    )
    with pytest.raises(PowerError, match="not trusted: set the power option ca_file"):
        RedfishDriver().power_state(untrusted)
    insecure = PowerTarget(
        **{**target.__dict__, "options": {"verify_tls": False, "system_id": SYSTEM_UUID}}
    )
    assert RedfishDriver().power_state(insecure) in ("on", "off")


# --- recorded answers ---------------------------------------------------------------------

RACK_SYSTEM = {  # DMTF public-rackmount1 mockup, trimmed to what the driver reads
    "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
    "@odata.id": "/redfish/v1/Systems/437XR1138R2",
    "Id": "437XR1138R2",
    "Name": "WebFrontEnd483",
    "PowerState": "On",
    "Boot": {
        "BootSourceOverrideEnabled": "Disabled",
        "BootSourceOverrideTarget": "None",
        "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "Cd"],
        "BootSourceOverrideMode": "UEFI",
    },
    "Actions": {
        "#ComputerSystem.Reset": {
            "target": "/redfish/v1/Systems/437XR1138R2/Actions/ComputerSystem.Reset",
            "ResetType@Redfish.AllowableValues": [
                "On",
                "ForceOff",
                "GracefulShutdown",
                "GracefulRestart",
                "ForceRestart",
                "Nmi",
                "ForceOn",
                "PushPowerButton",
            ],
        }
    },
}
PROPERTY_NOT_IN_LIST = {
    "error": {
        "code": "Base.1.8.GeneralError",
        "message": "A general error has occurred. See ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [
            {
                "@odata.type": "#Message.v1_1_1.Message",
                "MessageId": "Base.1.8.PropertyValueNotInList",
                "RelatedProperties": ["#/Boot/BootSourceOverrideTarget"],
                "Message": "The value Pxe for the property BootSourceOverrideTarget is not in "
                "the list of acceptable values.",
                "MessageArgs": ["Pxe", "BootSourceOverrideTarget"],
                "Severity": "Warning",
                "Resolution": "Choose a value from the enumeration list that the "
                "implementation can support and resubmit the request if the operation failed.",
            }
        ],
    }
}


def collection(*ids):
    return {
        "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
        "@odata.id": "/redfish/v1/Systems",
        "Members@odata.count": len(ids),
        "Members": [{"@odata.id": f"/redfish/v1/Systems/{i}"} for i in ids],
    }


class RecordedBmc:
    """Answers (method, path) from a table; records each request (method, path, headers,
    body)."""

    def __init__(self):
        self.answers: dict[tuple[str, str], tuple[int, object, dict]] = {}
        self.requests: list[dict] = []
        self.delay = 0.0
        bmc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                bmc.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body) if body else None,
                    }
                )
                time.sleep(bmc.delay)
                status, payload, headers = bmc.answers.get(
                    (self.command, self.path), (404, {"error": {"message": "no such"}}, {})
                )
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, method, path, status=200, payload=None, **headers):
        self.answers[(method, path)] = (status, payload, headers)

    def sent(self, method):
        return [r for r in self.requests if r["method"] == method]


@pytest.fixture
def bmc():
    recorded = RecordedBmc()
    yield recorded
    recorded.server.shutdown()
    recorded.server.server_close()


def recorded(bmc, **options):
    return PowerTarget(
        node="pve-2",
        mac="52:54:00:00:00:02",
        address=bmc.address,
        username="root",
        password=PASSWORD,
        options={"timeout": 5, **options},
    )


RACK = "/redfish/v1/Systems/437XR1138R2"


def test_recorded_reimage_uses_the_advertised_reset_target_and_the_etag(bmc):
    bmc.on("GET", "/redfish/v1/Systems", payload=collection("437XR1138R2"))
    bmc.on("GET", RACK, payload=RACK_SYSTEM, ETag='W/"12345"')
    bmc.on("PATCH", RACK, 204)
    bmc.on("POST", f"{RACK}/Actions/ComputerSystem.Reset", 204)

    RedfishDriver().reimage(recorded(bmc))

    (patch,) = bmc.sent("PATCH")
    assert patch["body"] == {
        "Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}
    }
    assert patch["headers"]["If-Match"] == 'W/"12345"'
    (post,) = bmc.sent("POST")
    assert post["path"] == f"{RACK}/Actions/ComputerSystem.Reset"
    assert post["body"] == {"ResetType": "ForceRestart"}
    assert all(r["headers"]["Authorization"].startswith("Basic ") for r in bmc.requests)


ILO_SYSTEM = {  # an HPE iLO's shape: trailing slashes, the ETag in the body
    "@odata.etag": 'W/"0E79655D"',
    "@odata.id": "/redfish/v1/Systems/1/",
    "@odata.type": "#ComputerSystem.v1_2_0.ComputerSystem",
    "Actions": {
        "#ComputerSystem.Reset": {
            "ResetType@Redfish.AllowableValues": [
                "On",
                "ForceOff",
                "ForceRestart",
                "Nmi",
                "PushPowerButton",
            ],
            "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/",
        }
    },
    "PowerState": "On",
}


def test_recorded_ilo_shaped_system(bmc):
    bmc.on("GET", "/redfish/v1/Systems", payload=collection("1/"))
    bmc.on("GET", "/redfish/v1/Systems/1/", payload=ILO_SYSTEM)
    bmc.on("PATCH", "/redfish/v1/Systems/1/", 200, {})
    bmc.on("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", 200, {})

    RedfishDriver().reimage(recorded(bmc))

    assert bmc.sent("PATCH")[0]["headers"]["If-Match"] == 'W/"0E79655D"'
    assert bmc.sent("POST")[0]["body"] == {"ResetType": "ForceRestart"}


def test_recorded_a_system_that_is_off_is_powered_on(bmc):
    bmc.on("GET", RACK, payload={**RACK_SYSTEM, "PowerState": "Off"})
    bmc.on("PATCH", RACK, 204)
    bmc.on("POST", f"{RACK}/Actions/ComputerSystem.Reset", 204)

    RedfishDriver().reimage(recorded(bmc, system_id="437XR1138R2"))

    assert bmc.sent("POST")[0]["body"] == {"ResetType": "On"}
    assert RedfishDriver().power_state(recorded(bmc, system_id="437XR1138R2")) == "off"


def test_recorded_several_systems_need_system_id(bmc):
    bmc.on("GET", "/redfish/v1/Systems", payload=collection("1", "2"))
    with pytest.raises(PowerError) as caught:
        RedfishDriver().reimage(recorded(bmc))
    assert caught.value.reason == (
        f"pve-2: the BMC at {bmc.address} has 2 systems "
        "(/redfish/v1/Systems/1, /redfish/v1/Systems/2); set the power option system_id"
    )
    assert not bmc.sent("PATCH") and not bmc.sent("POST")


def test_recorded_400_with_extended_info_is_the_reason(bmc):
    bmc.on("GET", RACK, payload=RACK_SYSTEM)
    bmc.on("PATCH", RACK, 400, PROPERTY_NOT_IN_LIST)
    with pytest.raises(PowerError) as caught:
        RedfishDriver().reimage(recorded(bmc, system_id="437XR1138R2"))
    assert caught.value.reason == (
        f"pve-2: Redfish PATCH {bmc.address}{RACK} failed: HTTP 400: Bad Request: "
        "The value Pxe for the property BootSourceOverrideTarget is not in the list of "
        "acceptable values."
    )
    assert not bmc.sent("POST")  # no reset when the boot override failed


def test_recorded_reset_type_not_offered(bmc):
    bmc.on("GET", RACK, payload=RACK_SYSTEM)
    bmc.on("PATCH", RACK, 204)
    with pytest.raises(PowerError, match=r"does not offer reset PowerCycle .*option reset_type"):
        RedfishDriver().reimage(recorded(bmc, system_id="437XR1138R2", reset_type="PowerCycle"))
    assert not bmc.sent("POST")


def test_recorded_401_never_shows_the_credentials(bmc):
    bmc.on("GET", "/redfish/v1/Systems", 401, {"error": {"message": "Unauthorized"}})
    with pytest.raises(PowerError) as caught:
        RedfishDriver().power_state(recorded(bmc))
    assert "HTTP 401: the BMC refused the username or password: Unauthorized" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_recorded_disable_network_boot(bmc):
    bmc.on("GET", RACK, payload=RACK_SYSTEM)
    bmc.on("PATCH", RACK, 204)
    RedfishDriver().disable_network_boot(recorded(bmc, system_id="437XR1138R2"))
    assert bmc.sent("PATCH")[0]["body"] == {
        "Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}
    }


def test_recorded_a_slow_bmc_is_bounded(bmc):
    bmc.on("GET", RACK, payload=RACK_SYSTEM)
    bmc.delay = 3
    started = time.monotonic()
    with pytest.raises(PowerError, match="timed out"):
        RedfishDriver().power_state(recorded(bmc, system_id="437XR1138R2", timeout=1))
    assert time.monotonic() - started < 2.5


def test_unreachable_bmc():
    target = PowerTarget(node="pve-3", mac="52:54:00:00:00:03", address=f"127.0.0.1:{free_port()}")
    with pytest.raises(
        PowerError, match=r"pve-3: Redfish GET https://127.0.0.1:\d+/redfish/v1/Systems failed"
    ):
        RedfishDriver().power_state(target)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"verify_tls": "no"}, "verify_tls"),
        ({"ca_file": 3}, "ca_file"),
        ({"system_id": "../Managers"}, "system_id"),
        ({"reset_type": "Nmi"}, "reset_type"),
        ({"timeout": 0}, "timeout"),
        ({"port": 443}, "port"),
    ],
)
def test_bad_options_name_the_key(options, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        RedfishDriver().check_options(options)
