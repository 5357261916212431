"""Cluster formation on REAL corosync (issue #16): playbooks/cluster_form.yml and
cluster_node_ready.yml run with ansible-playbook (through ansible-runner, as the portal's
jobs run them) on three test hosts with Debian's corosync and the stand-in pvecm
(tests/e2e/clusters/). The hosts boot once for the module; the tests build on each other in
file order: formed -> rerun unchanged -> readiness -> delnode + rejoin -> a hanging join
bounded and undone, then joined -> a node in another cluster refused, nothing changed ->
pvecm's own refusal (already in a cluster) and a wrong authkey (never quorate) reported.

    REQUIRE_TEST_HOSTS=1 .venv/bin/python -m pytest tests/e2e/test_cluster_formation.py
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest

from tests.e2e.clusters.hosts import install_pvecm, make_fresh, set_fault
from tests.e2e.conftest import unavailable
from tests.hosts import HostsUnavailable, boot_hosts, unavailable_reason
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "e2e-lab"
JOIN_TIMEOUT = 10  # the hanging join's bound: short, so the test stays quick


@dataclass
class Run:
    rc: int
    seconds: float
    changed: dict  # host -> changed tasks (PLAY RECAP)
    results: dict  # set_stats proxmox_cluster / cluster_ready
    summary: dict  # set_stats proxmox_cluster_summary
    stdout: str
    durations: dict  # task name -> seconds (the joins, the create: where the time goes)

    def states(self) -> dict:
        return {host: result["state"] for host, result in self.results.items()}

    def codes(self) -> dict:
        return {host: (r["error"] or {}).get("code") for host, r in self.results.items()}


@pytest.fixture(scope="module")
def pool():
    """Three hosts with corosync, booted once for the module, each a fresh 'Proxmox node'."""
    reason = unavailable_reason()
    if reason:
        unavailable(reason)
    try:
        with boot_hosts(3, extra_packages=("corosync",), apt_repo=False) as hosts:
            for host in hosts:
                install_pvecm(host)
            yield hosts
    except HostsUnavailable as error:
        unavailable(str(error))


@pytest.fixture(scope="module")
def form(pool, tmp_path_factory):
    """form(**extra_vars) runs playbooks/cluster_form.yml on the three hosts."""
    link0 = {host.name: host.address for host in pool}
    base = {
        "proxmox_cluster_name": CLUSTER,
        "proxmox_cluster_init_node": pool[0].name,
        "proxmox_cluster_link0": link0,
    }
    data_dir = tmp_path_factory.mktemp("cluster-form")
    return lambda **extra: run_playbook(pool, "cluster_form.yml", data_dir, {**base, **extra})


def run_playbook(pool, playbook, data_dir, extravars) -> Run:
    started = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(data_dir),
        playbook=str(REPO / "playbooks" / playbook),
        inventory=str(pool.inventory_path),
        extravars=extravars,
        envvars={
            "ANSIBLE_CONFIG": str(pool.ansible_cfg),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "PATH": pool.ansible_env()["PATH"],
        },
        quiet=True,
        suppress_env_files=True,
    )
    seconds = time.monotonic() - started
    stats = next(e for e in runner.events if e["event"] == "playbook_on_stats")["event_data"]
    custom = stats.get("artifact_data") or {}
    results = custom.get("proxmox_cluster") or custom.get("cluster_ready") or {}
    return Run(
        rc=runner.rc,
        seconds=seconds,
        changed=dict(stats.get("changed") or {}),
        results=results,
        summary=custom.get("proxmox_cluster_summary") or {},
        stdout=runner.stdout.read(),
        durations={
            e["event_data"]["task"]: round(e["event_data"]["duration"], 1)
            for e in runner.events
            if e["event"] == "runner_on_ok"
            and "duration" in e["event_data"]
            and (
                "joined the cluster" in e["event_data"]["task"]
                or "cluster exists" in e["event_data"]["task"]
            )
        },
    )


def pvecm_status(host):
    """(exit code, quorate, member count) from `pvecm status` on the host."""
    result = host.run("pvecm status")
    quorate = re.search(r"^Quorate:\s+Yes", result.stdout, re.MULTILINE) is not None
    members = re.findall(r"^0x[0-9a-f]+\s+\d+\s+\S+", result.stdout, re.MULTILINE)
    return result.returncode, quorate, len(members)


def assert_cluster_of(hosts, count):
    for host in hosts:
        assert wait_for(
            lambda h=host: pvecm_status(h) == (0, True, count),
            timeout=20,
            interval=0.5,
            message=lambda h=host: f"{h.name} quorate with {count}: {h.run('pvecm status').stdout}",
        )


def config_of(host) -> str:
    return host.run("cat /etc/pve/corosync.conf 2>/dev/null; sha256sum /etc/corosync/*").stdout


def reprovision(host):
    """What a re-image leaves: a fresh Proxmox node with a new root key."""
    make_fresh(host)
    host.run("rm -f /root/.ssh/id_ed25519 /root/.ssh/id_ed25519.pub", check=True)


def explain(run: Run) -> str:
    return f"rc={run.rc} results={run.results} summary={run.summary}\n{run.stdout[-4000:]}"


def test_forms_a_quorate_cluster_of_three(pool, form):
    run = form()
    assert run.rc == 0, explain(run)
    names = [host.name for host in pool]
    assert run.states() == {names[0]: "created", names[1]: "joined", names[2]: "joined"}
    assert all(result["error"] is None for result in run.results.values())
    assert run.summary == {"name": CLUSTER, "quorate": True, "members": names, "expected": 3}
    assert_cluster_of(pool, 3)
    print(f"cluster of 3 formed in {run.seconds:.1f} s; steps: {run.durations}")


def test_rerun_on_the_formed_cluster_changes_nothing(pool, form):
    before = [config_of(host) for host in pool]
    run = form()
    assert run.rc == 0, explain(run)
    assert set(run.states().values()) == {"member"}
    assert not any(run.changed.values()), explain(run)
    assert [config_of(host) for host in pool] == before
    print(f"rerun in {run.seconds:.1f} s")


def test_readiness_reports_each_node_without_failing_the_play(pool, tmp_path):
    pool[1].run("systemctl stop pveproxy", check=True)
    try:
        run = run_playbook(pool, "cluster_node_ready.yml", tmp_path, {})
    finally:
        pool[1].run("systemctl start pveproxy", check=True)
    assert run.rc == 0, explain(run)
    assert run.results[pool[0].name] == {"ready": True, "reason": "ready"}
    not_ready = {"ready": False, "reason": "not active: pveproxy (inactive)"}
    assert run.results[pool[1].name] == not_ready
    assert run.results[pool[2].name]["ready"] is True


def test_reprovisioned_member_is_deleted_then_rejoins(pool, form):
    member = pool[1]
    reprovision(member)
    refused = form()
    assert refused.codes()[member.name] == "already_member", explain(refused)

    run = form(proxmox_cluster_remove=[member.name])
    assert run.rc == 0, explain(run)
    assert run.states() == {pool[0].name: "member", member.name: "joined", pool[2].name: "member"}
    assert_cluster_of(pool, 3)


def test_a_hanging_join_is_bounded_reported_and_undone(pool, form):
    joiner = pool[2]
    reprovision(joiner)
    set_fault(joiner, "join-hang")
    try:
        run = form(proxmox_cluster_remove=[joiner.name], proxmox_cluster_join_timeout=JOIN_TIMEOUT)
    finally:
        set_fault(joiner, None)
    assert run.rc != 0
    assert run.codes()[joiner.name] == "join_timeout", explain(run)
    assert f"within {JOIN_TIMEOUT} s" in run.results[joiner.name]["error"]["message"]
    assert run.seconds < JOIN_TIMEOUT + 60, explain(run)
    # Undone: no pvecm left on the joiner, its corosync stopped, the survivors quorate as two.
    assert joiner.run("pgrep -f 'pvecm add'").returncode == 1
    assert joiner.run("systemctl is-active corosync").stdout.strip() == "inactive"
    assert pvecm_status(joiner)[0] == 1
    assert_cluster_of(pool[:2], 2)
    assert run.summary["members"] == [pool[0].name, pool[1].name]

    again = form()
    assert again.rc == 0, explain(again)
    assert again.states()[joiner.name] == "joined"
    assert_cluster_of(pool, 3)


def test_a_node_in_another_cluster_is_refused_and_nothing_changes(pool, form):
    stranger = pool[2]
    reprovision(stranger)
    stranger.run("pvecm create other", check=True)
    wait_for(lambda: pvecm_status(stranger)[:2] == (0, True), 20, 0.5, "the other cluster")
    before = [config_of(host) for host in pool]

    run = form(proxmox_cluster_remove=[stranger.name])
    assert run.rc != 0
    assert run.codes() == {pool[0].name: None, pool[1].name: None, stranger.name: "other_cluster"}
    assert "in cluster 'other'" in run.results[stranger.name]["error"]["message"]
    assert not any(run.changed.values()), explain(run)
    assert [config_of(host) for host in pool] == before


def test_pvecm_refusal_and_a_wrong_authkey_are_reported(pool, form):
    joiner = pool[2]
    reprovision(joiner)
    set_fault(joiner, "already-member")
    try:
        refused = form(proxmox_cluster_remove=[joiner.name])
    finally:
        set_fault(joiner, None)
    assert refused.codes()[joiner.name] == "already_member", explain(refused)
    assert "is this node already in a cluster?!" in refused.results[joiner.name]["error"]["message"]

    set_fault(joiner, "wrong-authkey")
    try:
        run = form(proxmox_cluster_join_timeout=JOIN_TIMEOUT)
    finally:
        set_fault(joiner, None)
    assert run.codes()[joiner.name] == "join_timeout", explain(run)
    assert joiner.run("systemctl is-active corosync").stdout.strip() == "inactive"
    assert_cluster_of(pool[:2], 2)
