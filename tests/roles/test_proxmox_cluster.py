"""roles/proxmox_cluster: the pvecm module's parsing and bounded runs, the controller's plan
and outcomes (filter_plugins), called directly; roles/proxmox_ready's checks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.roles.support import load, run
from tests.waiting import wait_for

pvecm = load("roles/proxmox_cluster/library/proxmox_cluster_pvecm.py")
decide = load("roles/proxmox_cluster/filter_plugins/proxmox_cluster.py")
ready = load("roles/proxmox_ready/library/proxmox_ready_check.py")

# `pvecm status` as the stand-in prints it on the test hosts (a real Proxmox node prints the
# same: its "Cluster information" header, then `corosync-quorumtool -siH`).
STATUS = """\
Cluster information
-------------------
Name:             lab1
Config Version:   3
Transport:        knet
Secure auth:      on

Quorum information
------------------
Date:             Fri Dec  4 15:33:39 2026
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          0x00000002
Ring ID:          1.1c
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2
Flags:            Quorate

Membership information
----------------------
    Nodeid      Votes Name
0x00000001          1 10.0.0.1
0x00000002          1 10.0.0.2 (local)
0x00000003          1 10.0.0.3
"""

CONF = """\
nodelist {
  node {
    name: pve1
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 10.0.0.1
  }
  node {
    name: pve2
    nodeid: 2
    quorum_votes: 1
    ring0_addr: 10.0.0.2
  }
  node {
    name: pve3
    nodeid: 3
    quorum_votes: 1
    ring0_addr: 10.0.0.3
  }
}
totem {
  cluster_name: lab1
  config_version: 3
}
"""

NODELIST = pvecm.parse_nodelist(CONF)
TWO = {name: node for name, node in NODELIST.items() if name != "pve3"}
LINK0 = {"h1": "10.0.0.1", "h2": "10.0.0.2", "h3": "10.0.0.3"}
HOSTS = ["h1", "h2", "h3"]


def test_status_is_parsed_with_its_membership():
    status = pvecm.parse_status(STATUS)
    assert status["name"] == "lab1"
    assert status["config_version"] == 3
    assert (status["quorate"], status["nodes"], status["expected_votes"]) == (True, 3, 3)
    assert [m["nodeid"] for m in status["membership"]] == [1, 2, 3]
    assert [m["local"] for m in status["membership"]] == [False, True, False]
    assert pvecm.member_names(status, NODELIST) == ["pve1", "pve2", "pve3"]


def test_not_quorate_and_no_cluster_are_told_apart():
    status = pvecm.parse_status(STATUS.replace("Quorate:          Yes", "Quorate:          No"))
    assert status["quorate"] is False
    empty = pvecm.parse_status("Error: Corosync config '/etc/pve/corosync.conf' does not exist")
    assert (empty["name"], empty["quorate"], empty["membership"]) == (None, False, [])


def test_full_membership_needs_the_exit_code_the_text_and_the_whole_nodelist():
    status = pvecm.parse_status(STATUS)
    state = {
        "in_cluster": True,
        "status_rc": 0,
        "status": status,
        "nodelist": NODELIST,
        "members": pvecm.member_names(status, NODELIST),
    }
    assert pvecm.is_full_member(state)
    assert not pvecm.is_full_member({**state, "status_rc": 2})  # the text alone is not trusted
    missing = {**state, "members": ["pve1", "pve2"]}
    assert pvecm.has_quorum(missing) and not pvecm.is_full_member(missing)


@pytest.mark.parametrize(
    ("output", "code"),
    [
        (
            "detected the following error(s):\n* corosync is already running, is this node"
            " already in a cluster?!\nCheck if node may join a cluster failed!",
            "already_member",
        ),
        (
            "corosync: address '10.0.0.2' already used on link ring0_addr by node 'x'",
            "address_in_use",
        ),
        ("* authentication key '/etc/corosync/authkey' already exists", "leftover_config"),
        ("* this host already contains virtual guests", "has_guests"),
        ("cluster not ready - no quorum?", "no_quorum"),
        ("successfully added node 'pve3' to cluster.", None),
    ],
)
def test_pvecm_add_output_maps_to_an_error_code(output, code):
    found = pvecm.join_error(output, timed_out=False, timeout=120)
    assert (found or {}).get("code") == code


def test_a_timed_out_join_names_its_bound_and_last_output():
    found = pvecm.join_error("copy corosync auth key\nwaiting for quorum...", True, 120)
    assert found["code"] == "join_timeout"
    assert "within 120 s" in found["message"] and "waiting for quorum..." in found["message"]


def test_bounded_run_ends_the_whole_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    started = time.monotonic()
    rc, _, timed_out = pvecm.bounded_run(
        ["sh", "-c", f"sleep 60 & echo $! > {marker}; echo waiting; wait"], timeout=1
    )
    assert (rc, timed_out) == (None, True)
    assert time.monotonic() - started < 10
    child = Path(f"/proc/{int(marker.read_text())}/stat")
    # Gone, or a zombie its new parent has not reaped yet: either way no longer running.
    wait_for(lambda: not child.exists() or child.read_text().split()[2] == "Z", 5, 0.05)


def fresh(name, link0_local=True):
    return {
        "nodename": name,
        "in_cluster": False,
        "cluster_name": None,
        "quorate": False,
        "nodelist": {},
        "corosync_running": False,
        "leftovers": [],
        "guests": False,
        "link0_local": link0_local,
    }


def member(name, cluster="lab1", nodelist=NODELIST):
    state = {**fresh(name), "in_cluster": True, "cluster_name": cluster, "quorate": True}
    return {**state, "nodelist": nodelist}


def test_fresh_nodes_create_on_the_init_node_then_join_in_order():
    states = {"h1": fresh("pve1"), "h2": fresh("pve2"), "h3": fresh("pve3")}
    plan = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    assert plan["errors"] == {}
    assert (plan["anchor"], plan["create"], plan["member_address"]) == ("h1", True, "10.0.0.1")
    assert plan["joiners"] == ["h2", "h3"]


def test_a_formed_cluster_plans_nothing():
    states = {h: member(f"pve{i}") for i, h in enumerate(HOSTS, 1)}
    plan = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    assert (plan["create"], plan["joiners"], plan["remove"], plan["errors"]) == (False, [], [], {})
    assert plan["members"] == HOSTS


def test_a_reprovisioned_member_is_removed_from_a_survivor_then_joins():
    states = {"h1": member("pve1"), "h2": fresh("pve2"), "h3": member("pve3")}
    plan = decide.plan(states, "lab1", "h1", LINK0, ["pve2"], HOSTS)
    assert plan["errors"] == {}
    assert (plan["anchor"], plan["remove"], plan["joiners"]) == ("h1", ["pve2"], ["h2"])

    without = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    assert without["errors"]["h2"]["code"] == "already_member"
    assert "h1" not in without["errors"]  # a healthy member stays a member


@pytest.mark.parametrize("entry", ["pve2", "h2", "10.0.0.2"])
def test_a_node_to_remove_is_named_by_node_name_inventory_host_or_link0(entry):
    states = {"h1": member("pve1"), "h2": fresh("pve2"), "h3": member("pve3")}
    plan = decide.plan(states, "lab1", "h1", LINK0, [entry], HOSTS)
    assert (plan["errors"], plan["remove"], plan["joiners"]) == ({}, ["pve2"], ["h2"])


def test_a_reprovisioned_init_node_joins_through_a_survivor():
    states = {"h1": fresh("pve1"), "h2": member("pve2"), "h3": member("pve3")}
    plan = decide.plan(states, "lab1", "h1", LINK0, ["pve1"], HOSTS)
    assert (plan["anchor"], plan["create"], plan["joiners"]) == ("h2", False, ["h1"])
    assert plan["member_address"] == "10.0.0.2"


@pytest.mark.parametrize(
    ("states", "remove", "refused", "code"),
    [
        ({"h1": fresh("pve1"), "h3": member("pve3", "other")}, [], "h3", "other_cluster"),
        ({"h1": member("pve1", "prod")}, [], "h1", "name_mismatch"),
        ({"h2": {**fresh("pve2"), "corosync_running": True}}, [], "h2", "already_member"),
        ({"h2": {**fresh("pve2"), "leftovers": ["/etc/authkey"]}}, [], "h2", "leftover_config"),
        ({"h2": fresh("pve2", link0_local=False)}, [], "h2", "link0_not_local"),
        (
            {"h1": member("pve1", nodelist=TWO), "h2": member("pve2", nodelist=TWO)},
            ["pve2"],
            "h2",
            "leftover_config",
        ),
    ],
)
def test_a_refusal_anywhere_stops_everything(states, remove, refused, code):
    states = {h: states.get(h, fresh(f"pve{i}")) for i, h in enumerate(HOSTS, 1)}
    plan = decide.plan(states, "lab1", "h1", LINK0, remove, HOSTS)
    assert plan["errors"][refused]["code"] == code
    assert (plan["create"], plan["joiners"], plan["remove"]) == (False, [], [])
    others = {h: e["code"] for h, e in plan["errors"].items() if h != refused}
    assert set(others.values()) <= {"blocked"}


def test_a_link0_already_in_the_cluster_is_refused():
    states = {"h1": member("pve1"), "h2": member("pve2"), "h3": fresh("pve3")}
    nodelist = {n: v for n, v in NODELIST.items() if n != "pve3"}
    states = {h: {**s, "nodelist": nodelist} if s["in_cluster"] else s for h, s in states.items()}
    plan = decide.plan(states, "lab1", "h1", {**LINK0, "h3": "10.0.0.2"}, [], HOSTS)
    assert plan["errors"]["h3"]["code"] == "address_in_use"
    assert "pve2" in plan["errors"]["h3"]["message"]


def test_outcomes_come_from_the_final_pvecm_status():
    states = {"h1": fresh("pve1"), "h2": fresh("pve2"), "h3": fresh("pve3")}
    plan = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    failures = {"h3": {"error": {"code": "join_timeout", "message": "killed"}}}
    final = {"full_member": True, "quorate_member": True}
    assert decide.outcome("h1", plan, failures, final) == {"state": "created", "error": None}
    assert decide.outcome("h2", plan, failures, final) == {"state": "joined", "error": None}
    assert decide.outcome("h3", plan, failures, final)["error"]["code"] == "join_timeout"
    lost = decide.outcome("h2", plan, {}, {"full_member": False, "output": "Quorate: No"})
    assert lost["error"]["code"] == "quorum_timeout"


def test_a_dry_run_reports_the_plan():
    states = {"h1": fresh("pve1"), "h2": fresh("pve2"), "h3": member("pve3", "other")}
    plan = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    assert decide.outcome("h3", plan, {}, {}, True)["error"]["code"] == "other_cluster"
    states["h3"] = fresh("pve3")
    plan = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    planned = [decide.outcome(h, plan, {}, {"full_member": False}, True)["state"] for h in HOSTS]
    assert planned == ["created", "joined", "joined"]


def test_a_cluster_not_ready_blocks_every_join():
    states = {"h1": member("pve1"), "h2": fresh("pve2"), "h3": fresh("pve3")}
    nodelist = {"pve1": NODELIST["pve1"]}
    states["h1"]["nodelist"] = nodelist
    plan = decide.plan(states, "lab1", "h1", LINK0, [], HOSTS)
    failures = decide.stopped(plan, {"code": "quorum_timeout", "message": "not quorate"})
    assert failures["h1"]["error"]["code"] == "quorum_timeout"
    assert {failures[h]["error"]["code"] for h in ("h2", "h3")} == {"blocked"}


def test_summary_is_the_anchors_view():
    final = {"cluster_name": "lab1", "quorate": True, "members": ["pve1", "pve2"]}
    assert decide.summary("lab1", final, 3) == {
        "name": "lab1",
        "quorate": True,
        "members": ["pve1", "pve2"],
        "expected": 3,
    }
    assert decide.summary("lab1", {}, 3)["quorate"] is False


def test_readiness_names_what_is_missing_and_what_is_not_active(tmp_path):
    systemctl = tmp_path / "systemctl"
    systemctl.write_text("#!/bin/sh\necho active\necho inactive\necho failed\nexit 3\n")
    systemctl.chmod(0o755)
    inactive = ready.inactive_services(["pve-cluster", "pvedaemon", "pveproxy"], str(systemctl))
    assert inactive == {"pvedaemon": "inactive", "pveproxy": "failed"}
    missing = ready.missing_tools(lambda tool: None if tool == "pvecm" else f"/usr/bin/{tool}")
    assert missing == ["pvecm"]
    assert ready.reason(missing, inactive) == (
        "not installed: pvecm; not active: pvedaemon (inactive), pveproxy (failed)"
    )
    assert ready.reason([], {}) == ""


FAKE_PVECM = """#!/bin/sh
case "$1" in
  status) echo "Error: Corosync config '/etc/pve/corosync.conf' does not exist - is this node \
part of a cluster?" >&2; exit 1 ;;
  create) echo "cluster config '/etc/pve/corosync.conf' already exists" >&2; exit 255 ;;
  add) echo "copy corosync auth key"; printf "waiting for quorum..."; exec sleep 60 ;;
esac
"""


@pytest.fixture
def fake_pvecm(tmp_path, monkeypatch):
    """pvecm (and corosync-quorumtool: not running) stand-ins on PATH for the module's main()."""
    for name, body in (("pvecm", FAKE_PVECM), ("corosync-quorumtool", "#!/bin/sh\nexit 1\n")):
        (tmp_path / name).write_text(body)
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_a_hanging_pvecm_add_is_killed_at_its_bound(fake_pvecm, capsys):
    started = time.monotonic()
    result = run(
        pvecm, {"action": "add", "member": "10.0.0.1", "link0": "127.0.0.1", "timeout": 1}, capsys
    )
    assert time.monotonic() - started < 10
    assert result["error"]["code"] == "join_timeout"
    assert "waiting for quorum..." in result["error"]["message"]
    assert (result["add_rc"], result["in_cluster"]) == (None, False)


def test_a_refused_create_is_reported(fake_pvecm, capsys):
    result = run(pvecm, {"action": "create", "name": "lab1", "link0": "127.0.0.1"}, capsys)
    assert result["error"] == {
        "code": "create_failed",
        "message": "cluster config '/etc/pve/corosync.conf' already exists",
    }


def test_a_node_without_pvecm_is_not_proxmox(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(pvecm, {"action": "status"}, capsys)
    assert result["error"]["code"] == "not_proxmox"
