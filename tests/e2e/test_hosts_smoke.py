"""The test hosts behave like real machines: Ansible over SSH, systemd units, reboots, quotas."""

from __future__ import annotations

import http.server
import json
import re
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import stubbed_broker
from tests.waiting import wait_for

PLAYBOOK = Path(__file__).parent / "playbooks" / "smoke.yml"
SMOKE_PORT = 8080
# Straight to the hosts' bridge even when the environment sets an HTTP proxy.
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def run_job(nodes, playbook, limit="", **extra_vars):
    """Run a playbook on the test hosts through the portal's Job engine (as a worker would)."""

    from django.conf import settings

    from portal.jobs import actions

    settings.PLAYBOOKS_DIR = PLAYBOOK.parent
    with stubbed_broker():
        job = actions.launch(
            playbook=PLAYBOOK.name if playbook == PLAYBOOK else playbook,
            nodes=nodes,
            limit=limit,
            extra_vars=extra_vars,
        )
    actions.execute(job.pk, job.signature, worker="e2e")
    job.refresh_from_db()
    return job


def stdout_of(job) -> str:
    return "\n".join(job.events.values_list("stdout", flat=True))


def fetch(address, port=SMOKE_PORT, timeout=2.0) -> str:
    with direct.open(f"http://{address}:{port}/", timeout=timeout) as response:
        return response.read().decode()


def wait_for_page(address, timeout=60.0) -> str:
    return wait_for(
        lambda: fetch(address), timeout, 0.3, f"a page from {address}", ignoring=(OSError,)
    )


def assert_succeeded(job):
    assert job.status == "successful", f"{job.status} {job.reason}\n{stdout_of(job)[-4000:]}"


def test_hosts_boot_with_systemd(test_hosts):
    assert len(test_hosts) == 3
    for host in test_hosts:
        state = host.run("systemctl is-system-running").stdout.strip()
        assert state in ("running", "degraded"), f"{host.name}: {state}"
        assert host.run("hostname").stdout.strip() == host.name
        assert host.run("sudo -n true", user="deploy").returncode == 0


def test_each_host_has_its_own_ssh_host_keys_and_the_bridge_a_fixed_mac(test_hosts):
    from tests.hosts.network import bridge_mac, subnet

    fingerprints = [
        host.run("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub", check=True).stdout.split()[1]
        for host in test_hosts
    ]
    assert len(set(fingerprints)) == len(fingerprints), fingerprints
    link = json.loads(test_hosts[0].run("ip -j neigh show", check=True).stdout or "[]")
    octet = test_hosts.state.octet
    gateway = f"{subnet(octet)}.1"  # the machine's end of the bridge, which SSH came from
    macs = {entry.get("lladdr") for entry in link if entry.get("dst") == gateway}
    assert macs == {bridge_mac(octet)}, link


def test_portal_job_serves_each_host_name_and_rerun_changes_nothing(
    test_hosts, portal_nodes, transactional_db
):
    first = run_job(portal_nodes, PLAYBOOK)
    assert_succeeded(first)
    assert first.event_count == first.events.count() > 0
    for host in test_hosts:
        assert wait_for_page(host.address).strip() == host.name

    second = run_job(portal_nodes, PLAYBOOK)
    assert_succeeded(second)
    assert set(second.host_summary) == {h.name for h in test_hosts}
    assert {h: c["changed"] for h, c in second.host_summary.items()} == {
        h.name: 0 for h in test_hosts
    }


def test_reboot_brings_the_unit_back(test_hosts, portal_nodes, transactional_db):
    host = test_hosts[-1]
    assert_succeeded(run_job(portal_nodes, PLAYBOOK, limit=host.name))
    boot_before = host.run("cat /proc/sys/kernel/random/boot_id").stdout

    assert_succeeded(run_job(portal_nodes, PLAYBOOK, limit=host.name, smoke_reboot=True))

    assert host.run("cat /proc/sys/kernel/random/boot_id").stdout != boot_before
    # The reboot module returns once SSH answers, which may be before boot has finished.
    host.run("systemctl is-system-running --wait")
    assert host.run("systemctl is-active smoke-http").stdout.strip() == "active"
    assert wait_for_page(host.address).strip() == host.name


def test_btrfs_quota_stops_a_write_at_the_limit(volume_host):
    subvolume = "/srv/workspaces/quota-smoke"
    setup = volume_host.run(
        f"btrfs subvolume create {subvolume} && btrfs qgroup limit 20M {subvolume}"
    )
    assert setup.returncode == 0, setup.stderr

    write = volume_host.run(f"dd if=/dev/zero of={subvolume}/big bs=1M count=40 conv=fsync")
    assert write.returncode != 0
    assert "quota exceeded" in write.stderr.lower()

    volume_host.run("sync")
    assert referenced_bytes(volume_host, subvolume) <= 21 * 1024 * 1024
    volume_host.run(f"btrfs subvolume delete {subvolume}")


def referenced_bytes(host, subvolume) -> int:
    subvolume_id = re.search(
        r"Subvolume ID:\s+(\d+)", host.run(f"btrfs subvolume show {subvolume}").stdout
    ).group(1)
    listing = host.run("btrfs qgroup show --raw /srv/workspaces").stdout
    row = re.search(rf"^0/{subvolume_id}\s+(\d+)", listing, re.MULTILINE)
    assert row, listing
    return int(row.group(1))


@contextmanager
def provider_serving(config: dict):
    """A loopback endpoint for Traefik's HTTP provider, serving one dynamic config."""
    body = json.dumps(config).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/traefik"
    finally:
        server.shutdown()
        server.server_close()


def routes_to(address, port):
    return {
        "http": {
            "routers": {
                "smoke": {"rule": "Host(`smoke.test`)", "service": "smoke", "entryPoints": ["web"]}
            },
            "services": {
                "smoke": {"loadBalancer": {"servers": [{"url": f"http://{address}:{port}"}]}}
            },
        }
    }


def test_traefik_routes_to_a_host_through_its_http_provider(test_hosts, traefik):
    host = test_hosts[1]
    host.run("systemctl stop traefik-backend; systemctl reset-failed traefik-backend")
    started = host.run(
        "systemd-run --unit=traefik-backend python3 -m http.server 8081 --directory /etc"
    )
    assert started.returncode == 0, started.stderr

    with provider_serving(routes_to(host.address, 8081)) as provider_url:
        proxy = traefik(provider_url)
        wait_for(
            lambda: "smoke@http" in {r["name"] for r in proxy.api("/http/routers")},
            20,
            0.2,
            "Traefik to list the smoke router",
            ignoring=(OSError,),
        )
        page = wait_for(
            lambda: fetch_via(proxy.entry_url + "/hostname", "smoke.test"),
            20,
            0.2,
            "the page through Traefik",
            ignoring=(OSError,),
        )

    assert page.strip() == host.name
    host.run("systemctl stop traefik-backend")


def fetch_via(url, host_header) -> str:
    request = urllib.request.Request(url, headers={"Host": host_header})  # noqa: S310 - http only
    with direct.open(request, timeout=2) as response:
        return response.read().decode()
