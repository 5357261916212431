"""The power drivers on a real test host: the test-host driver and IPMI through ipmi_sim
really re-image it (a file written on it is gone, the MAC is the same, it answers again)
and its first boot plays the post-install script served on the bridge."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from portal.clusters.power import PowerTarget, get_driver
from tests.e2e.conftest import unavailable
from tests.hosts import (
    HostsUnavailable,
    boot_hosts,
    power_state_command,
    reimage_command,
    unavailable_reason,
)
from tests.hosts.ipmi_sim import start_ipmi_sim
from tests.waiting import wait_for

BMC_PASSWORD = "bmc-Pa55word"
POST_INSTALL = """#!/bin/sh
# The portal's post-install script stand-in: leaves a mark the test reads.
echo "post-install ran for $1" > /root/post-install-ran
"""


@pytest.fixture(scope="module")
def pool():
    """One host of the module's own: re-images must not touch the session's pool."""
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(1, apt_repo=False) as hosts:
            yield hosts
    except HostsUnavailable as error:
        unavailable(str(error))


class PostInstallServer:
    """Serves the post-install script at /api/clusters/post-install?mac=... on the bridge's
    address (where the hosts reach the machine), as the portal will; records the MACs."""

    def __init__(self, address: str):
        self.macs: list[str] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                if url.path != "/api/clusters/post-install":
                    self.send_error(404)
                    return
                mac = parse_qs(url.query).get("mac", [""])[0]
                served.macs.append(mac)
                body = POST_INSTALL.replace("$1", mac).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/x-shellscript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}/api/clusters/post-install?mac={{mac}}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def post_install(pool):
    gateway = pool.subnet.rsplit(".", 1)[0] + ".1"
    server = PostInstallServer(gateway)
    yield server
    server.close()


def mac_of(host) -> str:
    result = host.run("cat /sys/class/net/host0/address", check=True)
    return result.stdout.strip()


def leave_a_file(host):
    host.run("echo before > /root/before-reimage && rm -f /root/post-install-ran", check=True)


def has_file(host, path) -> bool:
    return host.run(f"test -e {path}").returncode == 0


def post_install_ran(host) -> str:
    return host.run("cat /root/post-install-ran").stdout.strip()


def test_test_host_driver_reimages_and_first_boot_plays_the_post_install(pool, post_install):
    host = pool[0]
    mac = mac_of(host)
    leave_a_file(host)
    driver = get_driver("test-host")
    target = PowerTarget(
        node=host.name,
        mac=mac,
        address=host.address,
        options={
            "command": reimage_command(pool.run_id, host.name, post_install.url),
            "state_command": power_state_command(pool.run_id, host.name),
            "timeout": 120,
        },
    )
    started = time.monotonic()

    driver.reimage(target)

    took = time.monotonic() - started
    assert not has_file(host, "/root/before-reimage")  # the disk is the base again
    assert mac_of(host) == mac  # the portal keys nodes by MAC
    wait_for(lambda: post_install_ran(host), 60, 0.5, "the post-install script to run")
    assert post_install_ran(host) == f"post-install ran for {mac}"
    assert post_install.macs[-1] == mac
    assert driver.power_state(target) == "on"
    driver.disable_network_boot(target)  # nothing to do, and safe
    pool.wait_ready(host)  # the pool follows a host another process re-imaged
    print(f"test-host reimage -> ready in {took:.1f} s")


def test_ipmi_power_cycle_through_ipmi_sim_reimages_the_host(pool, post_install):
    host = pool[0]
    mac = mac_of(host)
    leave_a_file(host)
    ran_before = len(post_install.macs)
    driver = get_driver("ipmi")
    with start_ipmi_sim(pool.run_id, host.name, "admin", BMC_PASSWORD, post_install.url) as bmc:
        target = PowerTarget(
            node=host.name,
            mac=mac,
            address=bmc.address,
            username="admin",
            password=BMC_PASSWORD,
            options={"port": bmc.port, "cipher_suite": 3, "timeout": 20},
        )
        assert driver.power_state(target) == "on"
        started = time.monotonic()

        driver.reimage(target)  # bootdev pxe (once), power cycle: the BMC answers at once

        wait_for(
            lambda: any("re-imaged and ready" in line for line in bmc.actions()),
            120,
            0.5,
            "ipmi_sim's power cycle to re-image the host",
        )
        took = time.monotonic() - started
        assert [line.split(" ", 1)[1] for line in bmc.actions()[:2]] == ["power off", "reimage"]
        assert not has_file(host, "/root/before-reimage")
        assert mac_of(host) == mac
        wait_for(lambda: post_install_ran(host), 60, 0.5, "the post-install script to run")
        assert post_install.macs[ran_before:] == [mac]
        assert driver.power_state(target) == "on"
        driver.disable_network_boot(target)
        assert (bmc.directory / "boot").read_text().strip() == "default"
        assert BMC_PASSWORD not in bmc.actions_log.read_text()
    print(f"ipmi reimage -> ready in {took:.1f} s")


def test_a_reimage_gives_new_host_keys_unless_kept(pool):
    host = pool[0]

    def fingerprints():
        listing = host.run("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub", check=True)
        return listing.stdout.split()[1]

    before = fingerprints()
    pool.reimage(host, keep_host_keys=True)
    assert fingerprints() == before
    timings = pool.reimage(host)
    assert fingerprints() != before  # as a real installer does: the portal must re-pin
    assert timings["total"] < 60, timings
