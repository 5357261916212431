"""Pinned SSH host keys on real hosts (portal/nodes/hostkeys.py): the first contact pins the
key, a changed key is refused with the reason until an admin accepts the new one, and a node
that only its jump host can reach is run through it with both keys pinned."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from portal.jobs import ssh
from portal.nodes import actions, hostkeys
from portal.nodes.models import Node
from tests.e2e.test_hosts_smoke import assert_succeeded, run_job, stdout_of
from tests.e2e.test_ssh_sharing import masters
from tests.hosts.machine import pid_alive
from tests.waiting import wait_for

PLAYBOOK = "hostname.yml"


@pytest.fixture
def jobs_settings(settings, tmp_path):
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.JOB_SSH_SHARE_SECONDS = 300
    # Short (a socket path has 108 bytes at most) and this test's own: no master of another
    # test (opened against the old key) is reused.
    directory = Path(tempfile.mkdtemp(prefix="hk-", dir="/tmp"))
    settings.JOBS_CONTROL_DIR = str(directory)
    yield settings
    ssh.stop_masters(ssh.shared_dir(), how="exit")
    shutil.rmtree(directory, ignore_errors=True)


def offered_fingerprints(host) -> set[str]:
    """What the host's own sshd holds, read on the host (not over the network)."""
    listing = host.run("for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $k; done")
    assert listing.returncode == 0, listing.stderr
    return {line.split()[1] for line in listing.stdout.splitlines()}


def regenerate_host_keys(host) -> None:
    done = host.run("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh")
    assert done.returncode == 0, done.stderr


def pinned_fingerprints(node) -> set[str]:
    node.refresh_from_db()
    return {key.fingerprint for key in hostkeys.parse(node.host_keys)}


def test_first_contact_pins_the_key_the_host_offers(
    test_hosts, portal_nodes, transactional_db, jobs_settings
):
    node = portal_nodes[1]
    host = test_hosts[node.name]
    Node.objects.filter(pk=node.pk).update(host_keys="", host_keys_pinned_how="")
    node.refresh_from_db()

    job = run_job([node], PLAYBOOK)

    assert_succeeded(job)
    assert pinned_fingerprints(node) == offered_fingerprints(host)
    assert node.host_keys_pinned_how == "first_contact" and node.host_keys_pinned_by is None
    # The job's ssh really checked strictly against that pin:
    again = run_job([node], PLAYBOOK)
    assert_succeeded(again)


def test_a_changed_key_is_refused_until_an_admin_accepts_it(
    test_hosts, portal_nodes, transactional_db, jobs_settings, admin_client, admin_user
):
    node = portal_nodes[2]
    host = test_hosts[node.name]
    before = pinned_fingerprints(node)
    assert before == offered_fingerprints(host)
    regenerate_host_keys(host)
    after = offered_fingerprints(host)
    assert not before & after

    refused = run_job([node], PLAYBOOK)

    assert refused.status == "failed", refused.reason
    assert refused.reason.startswith(f"host key of node {node.name} changed (expected SHA256:")
    assert refused.reason.endswith("an admin must accept the new key")
    got = refused.reason.split("got ")[1].split(")")[0].split(", ")
    assert set(got) <= after and got, refused.reason
    assert any(fp in refused.reason for fp in before)
    assert pinned_fingerprints(node) == before  # a job never changes a pin
    assert refused.host_summary[node.name]["unreachable"] == 1

    # The admin's button on the node's page: re-read and pin, recording who accepted it.
    page = admin_client.get(f"/admin/nodes/node/{node.pk}/change/")
    assert b"Accept new host key" in page.content
    assert any(fp.encode() in page.content for fp in before)
    response = admin_client.post(f"/admin/nodes/node/{node.pk}/accept-host-key/")
    assert response.status_code == 302
    assert pinned_fingerprints(node) == after
    assert node.host_keys_pinned_how == "accepted" and node.host_keys_pinned_by == admin_user

    assert_succeeded(run_job([node], PLAYBOOK))


def _blocked_from_this_machine(host, gateway: str):
    """The host drops whatever it would send to this machine: only other hosts reach it.
    Set after the SSH session that sets it has ended (it would hang otherwise): wait for
    :func:`_unreachable_from_here` before relying on it."""
    done = host.run(
        f"setsid sh -c 'sleep 1; ip route add prohibit {gateway}/32' >/dev/null 2>&1 </dev/null &"
    )
    assert done.returncode == 0, done.stderr


def _unreachable_from_here(address: str) -> bool:
    direct = subprocess.run(
        ["ssh-keyscan", "-T", "3", address], capture_output=True, text=True, timeout=30, check=False
    )
    return direct.stdout == ""


def _ssh_through(jump, target, key: str, command: str) -> subprocess.CompletedProcess:
    options = [
        "-i",
        str(key),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
    ]
    proxy = " ".join(["ssh", *options, "-W", "%h:%p", f"root@{jump.address}"])
    return subprocess.run(
        ["ssh", *options, "-o", f"ProxyCommand={proxy}", f"root@{target.address}", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_node_only_its_jump_host_reaches(
    test_hosts, portal_nodes, transactional_db, jobs_settings
):
    bastion, target = portal_nodes[0], portal_nodes[2]
    bastion_host, target_host = test_hosts[bastion.name], test_hosts[target.name]
    regenerate_host_keys(target_host)  # the base image gives every host the same keys
    target_keys = offered_fingerprints(target_host)
    assert not target_keys & pinned_fingerprints(bastion)
    # Through the jump host, pinned on first contact (through the jump host too).
    actions.do_update_node(target, jump_host=bastion, host_keys="")
    gateway = test_hosts.subnet.rsplit(".", 1)[0] + ".1"
    _blocked_from_this_machine(target_host, gateway)
    try:
        wait_for(
            lambda: _unreachable_from_here(target.address),
            20,
            0.5,
            "the target to stop answering this machine directly",
        )

        first = run_job([target], PLAYBOOK)
        assert_succeeded(first)
        assert target.name in stdout_of(first)
        assert pinned_fingerprints(target) <= target_keys and target.host_keys
        assert target.host_keys_pinned_how == "first_contact"

        # Shared masters work through the jump host: the second job rides the first's.
        shared = ssh.shared_dir()
        opened = {
            name: pid for name, pid in masters(shared).items() if name.startswith(f"n{target.pk}-")
        }
        assert len(opened) == 1
        assert_succeeded(run_job([target], PLAYBOOK))
        assert {n: p for n, p in masters(shared).items() if n in opened} == opened

        # A changed credential closes the masters that use it (the jump host's too).
        actions.do_update_credential(target.credential, username="root")
        wait_for(
            lambda: not any(pid_alive(pid) for pid in opened.values()),
            10,
            message="the masters using the changed credential to close",
        )

        # The jump host's own key is checked: a wrong pin on it refuses the target's job.
        wrong = next(iter(hostkeys.parse(target.host_keys))).line  # the target's, not its
        Node.objects.filter(pk=bastion.pk).update(host_keys=wrong)
        refused = run_job([target], PLAYBOOK)
        assert refused.status == "failed", refused.reason
        assert (
            f"host key of node {bastion.name} (jump host of {target.name}) changed"
            in refused.reason
        ), refused.reason
        actions.do_accept_host_key(Node.objects.get(pk=bastion.pk), by=None)
        assert_succeeded(run_job([target], PLAYBOOK))
    finally:
        undone = _ssh_through(
            bastion_host,
            target_host,
            test_hosts.ssh_key_path,
            f"ip route del prohibit {gateway}/32",
        )
        assert undone.returncode == 0, undone.stderr
        actions.do_update_node(target, jump_host=None)


def test_the_operators_inventory_checks_the_pinned_keys(
    test_hosts, portal_nodes, transactional_db, tmp_path
):
    from tests.inventory.test_portal_inventory import BIN, SCRIPT, portal_env, run

    node = portal_nodes[1]
    env = portal_env(
        PORTAL_INVENTORY_KEY_DIR=str(tmp_path / "keys"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_SSH_ARGS="-o ControlMaster=no",
    )  # each run connects anew
    command = [
        BIN / "ansible",
        node.name,
        "-i",
        SCRIPT,
        "-m",
        "ansible.builtin.command",
        "-a",
        "hostname",
    ]
    ok = run(command, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert node.name in ok.stdout

    other = portal_nodes[2]  # a key that is not this host's: refused, never logged in
    regenerate_host_keys(test_hosts[other.name])
    actions.do_accept_host_key(other, by=None)
    Node.objects.filter(pk=node.pk).update(host_keys=other.host_keys)
    refused = run(command, env)
    assert refused.returncode != 0
    assert "Host key for portal-node-" in refused.stdout + refused.stderr
    assert "UNREACHABLE" in refused.stdout + refused.stderr
