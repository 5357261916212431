"""End-to-end tests on real systemd hosts (tests/hosts): fixtures and the `e2e` mark.

Works with or without pytest-django: only `portal_nodes` needs Django (and its `db`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hosts import (
    AptRepoUnavailable,
    CodeServerUnavailable,
    HostsUnavailable,
    boot_hosts,
    code_server_artifact,
    start_traefik,
    unavailable_reason,
)

E2E_DIR = Path(__file__).parent
POOL_SIZE = 3


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end test on real systemd test hosts")


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def hosts_required() -> bool:
    return os.environ.get("REQUIRE_TEST_HOSTS") == "1"


def unavailable(reason: str):
    """Skip, or fail when REQUIRE_TEST_HOSTS=1 says test hosts must run."""
    message = f"test hosts unavailable: {reason}"
    if hosts_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message + " (REQUIRE_TEST_HOSTS=1 makes this a failure)")


@pytest.fixture(scope="session")
def test_hosts():
    """Three booted hosts for the whole session; the first has /srv/workspaces on btrfs.

    Yields a HostPool: iterate it for Hosts (name, address, ssh_key_path, run(cmd)),
    plus inventory_path, ansible_cfg and ansible_env().
    """
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(POOL_SIZE, volumes=1) as pool:
            yield pool
    except HostsUnavailable as error:
        unavailable(str(error))


@pytest.fixture(scope="session")
def code_server_package():
    """Path of the air-gapped code-server tarball (tests/hosts/code_server.py).

    Built on first use (a few minutes, from the npm registry), then cached beside the base
    image. It extracts into a directory (e.g. /opt/code-server) holding bin/code-server,
    node/bin/node and lib/node_modules/code-server; CODE_SERVER_VERSION and NODE_VERSION
    in tests.hosts.code_server name the versions.
    """
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        return code_server_artifact()
    except (HostsUnavailable, CodeServerUnavailable) as error:
        unavailable(str(error))


@pytest.fixture(scope="module")
def scratch_host():
    """One host of the module's own (not the session's pool), for tests that install system
    packages (nginx, PostgreSQL, ...) and must neither disturb nor be disturbed by others.
    Its apt uses the local repository (`apt_repo` below), already built when this returns."""
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(1) as pool:
            wait_for_apt_repo(pool)
            yield pool[0]
    except HostsUnavailable as error:
        unavailable(str(error))


@pytest.fixture(scope="session")
def apt_repo(test_hosts):
    """The session's hosts' local Debian repository, waited for (built in the background
    when the pool boots if it is not cached): `apt-get update && apt-get install nginx`
    works on the hosts as written. Returns its machine path (tests/hosts/apt_repo.py)."""
    return wait_for_apt_repo(test_hosts)


def wait_for_apt_repo(pool):
    try:
        return pool.apt_repo.wait()
    except AptRepoUnavailable as error:
        unavailable(str(error))


@pytest.fixture
def volume_host(test_hosts):
    """The pool's host with a btrfs volume (quotas on) at /srv/workspaces."""
    return test_hosts.volume_hosts[0]


@pytest.fixture
def traefik():
    """Start real Traefik: traefik(provider_url, entry_port=None, api_port=None)."""
    started = []

    def start(provider_url, entry_port=None, api_port=None, poll_interval="1s"):
        instance = start_traefik(provider_url, entry_port, api_port, poll_interval)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def portal_nodes(test_hosts, db):
    """The pool's hosts as portal Nodes (root over SSH with the run's key), their host keys
    pinned the way the portal pins any node's on first contact (do_record_host_key)."""
    from portal.nodes.actions import do_record_host_key
    from portal.nodes.models import Credential, Node

    credential = Credential.objects.create(
        name=f"test-hosts-{test_hosts.run_id}",
        kind="ssh_key",
        username="root",
        secret=Path(test_hosts.ssh_key_path).read_text(),
    )
    nodes = [
        Node.objects.create(
            name=host.name,
            address=host.address,
            ssh_port=host.ssh_port,
            ssh_user="root",
            become=False,
            purpose="workspace_host" if host.has_volume else "fleet_host",
            enabled=True,
            labels={"test_host": True, "btrfs_volume": host.has_volume},
            credential=credential,
        )
        for host in test_hosts
    ]
    for node in nodes:
        do_record_host_key(node)
    return nodes


FAST_PATH_ANSWERS: list[int] = []  # statuses of the heartbeats the fast path answered


@pytest.fixture
def portal_on_bridge(test_hosts, transactional_db, settings):
    """The portal (a live server) on the bridge's address, the machine's side, where the
    hosts reach it (their agents' heartbeats). Served as portal.wsgi serves it in
    production: the heartbeat's fast path in front of Django (each heartbeat it answers is
    counted in FAST_PATH_ANSWERS). Yields its base URL."""
    from pytest_django.live_server_helper import LiveServer

    from portal.monitoring import heartbeat
    from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath

    def counted(*args):
        answered = heartbeat.answer(*args)
        FAST_PATH_ANSWERS.append(answered[0])
        return answered

    gateway = test_hosts.subnet.rsplit(".", 1)[0] + ".1"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, gateway]
    server = LiveServer(f"{gateway}:0", start=False)
    static = server.thread.static_handler
    server.thread.static_handler = lambda app: HeartbeatFastPath(static(app), answer=counted)
    server.start()
    try:
        yield f"http://{gateway}:{server.thread.port}"
    finally:
        server.stop()


# --- workspaces ------------------------------------------------------------------------------


@pytest.fixture
def stack(
    test_hosts,
    portal_nodes,
    volume_host,
    traefik,
    code_server_package,
    live_server,
    settings,
    tmp_path,
    broker,
):
    """A workspace node (the btrfs host), real Traefik fed by the portal's provider on a live
    server, code-server from the air-gapped artifact; jobs are run by the test (no broker)."""
    from django.conf import settings as django_settings

    from tests.e2e.workspace_support import DOMAIN, TOKEN, Stack

    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.CODE_SERVER_PACKAGE = str(code_server_package)
    settings.TRAEFIK_PROVIDER_TOKEN = TOKEN
    settings.WORKSPACES_DOMAIN = DOMAIN
    settings.TRAEFIK_ENTRYPOINTS = ["web"]
    settings.TRAEFIK_TLS = False
    settings.WORKSPACE_ROUTE_TIMEOUT = 30
    proxy = traefik(f"{live_server.url}/api/traefik/config?token={TOKEN}", poll_interval="500ms")
    settings.TRAEFIK_API_URL = proxy.api_url
    node = next(n for n in portal_nodes if n.name == volume_host.name)
    node.workspace_quota_backend = "btrfs"
    node.workspace_root = "/srv/workspaces"
    node.save()
    return Stack(node, volume_host, proxy)
