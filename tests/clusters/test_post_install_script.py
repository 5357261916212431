"""The real post-install script, run with dash against a live server: it signs with
openssl (the key never on a command line), posts with curl, and registers the node; again,
it is an idempotent 200; with a wrong secret it is refused and stops; with the portal down
it retries a bounded number of times."""

import os
import shutil
import subprocess
import urllib.request

import pytest

from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import NodeReprovision
from tests.clusters.conftest import make_cluster, node_runs, start

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("dash", "curl", "openssl", "od")),
        reason="needs dash, curl, openssl and od",
    ),
]
NODE_ENV = {
    "PORTAL_HOSTNAME": "pve-1.lab.example",
    "PORTAL_IP": "10.9.0.101",
    "PORTAL_LINK0": "10.10.0.1",
    "PORTAL_ATTEMPTS": "2",
    "PORTAL_RETRY_DELAY": "1",
}


def fetch(live_server, mac):
    url = f"{live_server.url}/api/clusters/post-install?mac={mac}"
    with urllib.request.urlopen(url) as got:  # noqa: S310  (the live server's http URL)
        assert got.headers["Content-Type"].startswith("text/x-shellscript")
        return got.read().decode()


def run_script(script, tmp_path, **env):
    path = tmp_path / "post-install.sh"
    path.write_text(script)
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **NODE_ENV, **env}
    return subprocess.run(
        ["dash", str(path)], env=environ, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def node_run(broker):
    run = start(make_cluster(count=1))
    return node_runs(run)["pve-1"]


def test_the_script_registers_the_node_and_again_changes_nothing(live_server, node_run, tmp_path):
    script = fetch(live_server, node_run.cluster_node.mac)
    # Neither secret goes on a command line: openssl and curl read them from stdin.
    commands = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "SECRET" in line and "openssl" in line]
    assert not [line for line in commands if "$PORTAL_TOKEN" in line and "curl" in line]
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"repeated": false' in done.stderr or '"repeated":false' in done.stderr
    node_run.refresh_from_db()
    assert node_run.status == N.REGISTERED
    assert node_run.registration == {
        "mac": node_run.cluster_node.mac,
        "hostname": "pve-1.lab.example",
        "ip": "10.9.0.101",
        "link0": "10.10.0.1",
        "status": "post-install-complete",
    }
    moves = node_run.history.count()
    again = run_script(script, tmp_path)
    assert again.returncode == 0, again.stderr
    assert '"repeated":true' in again.stderr.replace(" ", "")
    assert NodeReprovision.objects.get(pk=node_run.pk).history.count() == moves


def test_a_wrong_secret_is_refused_once_and_the_script_stops(live_server, node_run, tmp_path):
    script = fetch(live_server, node_run.cluster_node.mac)
    forged = script.replace(f"PORTAL_SECRET={node_run.secret}", "PORTAL_SECRET=" + "ab" * 32)
    assert forged != script
    done = run_script(forged, tmp_path)
    assert done.returncode == 1
    assert "refused (403)" in done.stderr and "bad_signature" in done.stderr
    assert "attempt 1 failed" not in done.stderr  # a refusal is not retried
    node_run.refresh_from_db()
    assert node_run.status == N.INSTALLING


def test_an_unreachable_portal_is_retried_a_bounded_number_of_times(
    live_server, node_run, tmp_path, settings
):
    settings.CLUSTERS_PORTAL_URL = "http://127.0.0.1:9"  # discard: nothing listens
    script = fetch(live_server, node_run.cluster_node.mac)
    done = run_script(script, tmp_path)
    assert done.returncode == 1
    assert "attempt 1 failed (000)" in done.stderr
    assert "gave up after 2 attempt(s)" in done.stderr
