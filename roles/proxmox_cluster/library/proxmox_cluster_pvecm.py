#!/usr/bin/python3
"""Proxmox VE's pvecm, driven for the proxmox_cluster role: what a node's cluster state is,
and the steps that change it, each bounded and reported with a structured error.

action=status   pvecm status parsed (quorate from the text AND the exit code), the node's
                /etc/pve/corosync.conf nodelist, leftovers of an earlier cluster, whether
                corosync runs, whether link0 is a local address; with wait > 0, polls until
                the node is a quorate member and sees every node of its nodelist
                (wait_for=nodelist) or only quorate (quorum), or the bound passed
action=create   pvecm create NAME -link0 ADDR unless /etc/pve/corosync.conf exists, then
                waits for quorum for `wait` seconds
action=add      pvecm add MEMBER -link0 ADDR --use_ssh, killed (its whole process group) at
                `timeout`; then membership is verified from pvecm status within the same bound,
                never from pvecm add's exit code alone
action=delnode  pvecm delnode NAME on a member, when NAME is in its nodelist; with
                `lower_expected`, a member that lost quorum because NAME never came (a failed
                join) first sets expected votes to the votes present (pvecm expected)
action=reset    a failed joiner's own partial state: corosync stopped and disabled, the
                config and authkey it received removed (nothing, if it is a full member)
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

CLUSTER_CONF = "/etc/pve/corosync.conf"
LOCAL_CONF = "/etc/corosync/corosync.conf"
AUTHKEY = "/etc/corosync/authkey"
GUEST_DIRS = ("/etc/pve/qemu-server", "/etc/pve/lxc")
POLL_INTERVAL = 0.5
KILL_GRACE = 5

# What pvecm add printed -> the structured error's code (first match wins).
JOIN_ERRORS = (
    (r"is this node already in a cluster|can't add existing node", "already_member"),
    (r"already used on link", "address_in_use"),
    (r"authentication key .* already exists|cluster config .* already exists", "leftover_config"),
    (r"already contains virtual guests", "has_guests"),
    (r"cannot use IP .*not found on local node", "link0_not_local"),
    (r"no quorum", "no_quorum"),
)


# --- parsing (pure functions; unit-tested in tests/roles/) ------------------------------------


def parse_status(text: str) -> dict:
    """`pvecm status` output -> its facts. Missing parts stay None (e.g. no cluster)."""
    fields = dict(re.findall(r"^([A-Za-z][A-Za-z ]*?):\s+(.*?)\s*$", text, re.MULTILINE))
    membership = [
        {
            "nodeid": int(nodeid, 16) if nodeid.lower().startswith("0x") else int(nodeid),
            "votes": int(votes),
            "name": name,
            "local": bool(local),
        }
        for nodeid, votes, name, local in re.findall(
            r"^\s*(0x[0-9a-fA-F]+|\d+)\s+(\d+)\s+(\S+)(\s+\(local\))?\s*$", text, re.MULTILINE
        )
    ]
    return {
        "name": fields.get("Name"),
        "config_version": to_int(fields.get("Config Version")),
        "transport": fields.get("Transport"),
        "secure_auth": fields.get("Secure auth"),
        "quorate": fields.get("Quorate") == "Yes",
        "nodes": to_int(fields.get("Nodes")),
        "expected_votes": to_int(fields.get("Expected votes")),
        "total_votes": to_int(fields.get("Total votes")),
        "membership": membership,
    }


def to_int(value):
    try:
        return int(value.split()[0])
    except (AttributeError, ValueError, IndexError):
        return None


def parse_nodelist(text: str) -> dict:
    """corosync.conf -> {node name: {"nodeid": int, "ring0_addr": str, "quorum_votes": int}}."""
    nodes = {}
    for block in re.findall(r"\bnode\s*\{([^{}]*)\}", text):
        values = dict(re.findall(r"^\s*(\w+)\s*:\s*(\S+)", block, re.MULTILINE))
        if "name" in values:
            nodes[values["name"]] = {
                "nodeid": to_int(values.get("nodeid")),
                "ring0_addr": values.get("ring0_addr"),
                "quorum_votes": to_int(values.get("quorum_votes", "1")),
            }
    return nodes


def member_names(status: dict, nodelist: dict) -> list:
    """The names of the nodes in the membership (by nodeid, as -siH shows addresses)."""
    by_id = {node["nodeid"]: name for name, node in nodelist.items()}
    return sorted(by_id.get(entry["nodeid"], entry["name"]) for entry in status["membership"])


def has_quorum(state: dict) -> bool:
    """Quorate by text and exit code, with this node in the membership."""
    local = [entry for entry in state["status"]["membership"] if entry["local"]]
    quorate = state["status_rc"] == 0 and state["status"]["quorate"]
    return state["in_cluster"] and quorate and bool(local)


def is_full_member(state: dict) -> bool:
    """Quorate by text and exit code, this node in the membership, and every node of its
    nodelist there too."""
    return has_quorum(state) and set(state["nodelist"]) <= set(state["members"])


def join_error(output: str, timed_out: bool, timeout: int) -> dict | None:
    if timed_out:
        last = output.strip().splitlines()[-1:] or ["(no output)"]
        return {
            "code": "join_timeout",
            "message": f"pvecm add did not finish within {timeout} s and was killed;"
            f" its last output: {last[0]}",
        }
    for pattern, code in JOIN_ERRORS:
        if re.search(pattern, output):
            return {"code": code, "message": summary(output)}
    return None


def summary(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return " ".join(lines[-6:])


# --- the node's state ---------------------------------------------------------------------


def read(path):
    try:
        with open(path) as conf:
            return conf.read()
    except OSError:
        return ""


def local_addresses():
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return set(re.findall(r"inet6? ([0-9a-fA-F.:]+)/", out))


def node_state(link0: str = "") -> dict:
    result = subprocess.run(["pvecm", "status"], capture_output=True, text=True)
    status = parse_status(result.stdout)
    nodelist = parse_nodelist(read(CLUSTER_CONF))
    in_cluster = os.path.exists(CLUSTER_CONF)
    running = subprocess.run(["corosync-quorumtool", "-l"], capture_output=True).returncode == 0
    state = {
        "nodename": socket.gethostname().split(".")[0],
        "in_cluster": in_cluster,
        "cluster_name": status["name"] if in_cluster else None,
        "status_rc": result.returncode,
        "quorate": result.returncode == 0 and status["quorate"],
        "status": status,
        "nodelist": nodelist,
        "members": member_names(status, nodelist),
        "corosync_running": running,
        "leftovers": [p for p in (AUTHKEY, LOCAL_CONF) if not in_cluster and os.path.exists(p)],
        "guests": any(os.path.isdir(d) and os.listdir(d) for d in GUEST_DIRS),
        "link0_local": bool(link0) and link0 in local_addresses(),
        "output": (result.stdout + result.stderr).strip(),
    }
    state["quorate_member"] = has_quorum(state)
    state["full_member"] = is_full_member(state)
    return state


def wait_member(deadline: float, link0: str = "", wait_for="nodelist") -> tuple[dict, bool]:
    """Poll until this node is a full member (wait_for=nodelist) or quorate (quorum), or the
    deadline; (state, timed_out). A node in no cluster answers at once."""
    reached = is_full_member if wait_for == "nodelist" else has_quorum
    while True:
        state = node_state(link0)
        if reached(state) or not state["in_cluster"]:
            return state, False
        if time.monotonic() >= deadline:
            return state, True
        time.sleep(POLL_INTERVAL)


# --- the steps ----------------------------------------------------------------------------------


def bounded_run(argv, timeout: float) -> tuple[int | None, str, bool]:
    """Run argv in its own process group; at the bound the whole group is ended (TERM, then
    KILL): (rc or None, output, timed_out)."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=max(timeout, 0.1))
        return process.returncode, output, False
    except subprocess.TimeoutExpired:
        for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                output, _ = process.communicate(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                output = ""
        return None, output or "", True


def do_status(module, params):
    if params["wait"] > 0:
        deadline = time.monotonic() + params["wait"]
        state, timed_out = wait_member(deadline, params["link0"], params["wait_for"])
    else:
        state, timed_out = node_state(params["link0"]), False
    module.exit_json(changed=False, timed_out=timed_out, **state)


def do_create(module, params):
    changed = False
    if not os.path.exists(CLUSTER_CONF):
        argv = ["pvecm", "create", params["name"], "-link0", params["link0"]]
        rc, output, _ = bounded_run(argv, params["timeout"])
        if rc != 0:
            error = {"code": "create_failed", "message": summary(output)}
            module.exit_json(changed=True, error=error, create_output=output, **node_state())
        changed = True
    state, timed_out = wait_member(time.monotonic() + params["wait"])
    error = None
    if timed_out or not is_full_member(state):
        error = {
            "code": "quorum_timeout",
            "message": f"not quorate {params['wait']} s after create: {summary(state['output'])}",
        }
    module.exit_json(changed=changed, error=error, **state)


def do_add(module, params):
    deadline = time.monotonic() + params["timeout"]
    argv = ["pvecm", "add", params["member"], "-link0", params["link0"], "--use_ssh"]
    rc, output, timed_out = bounded_run(argv, params["timeout"])
    # Its output names the refusal only when it failed; success is verified below.
    error = join_error(output, timed_out, params["timeout"]) if rc != 0 else None
    state = node_state(params["link0"])
    if error is None:
        # pvecm add's exit code is not trusted: the node is a member when pvecm status says so.
        state, waited_out = wait_member(deadline, params["link0"])
        if not is_full_member(state):
            code = "join_timeout" if waited_out else "join_failed"
            message = f"pvecm add exited {rc}, but pvecm status shows no full membership: "
            error = {"code": code, "message": message + summary(state["output"] or output)}
    module.exit_json(changed=True, error=error, add_rc=rc, add_output=output, **state)


def do_delnode(module, params):
    state = node_state()
    nodelist = state["nodelist"]
    if not any(params["name"] in (name, node["ring0_addr"]) for name, node in nodelist.items()):
        module.exit_json(changed=False, error=None, **state)
    if params["lower_expected"] and not state["quorate"] and state["status"]["total_votes"]:
        subprocess.run(["pvecm", "expected", str(state["status"]["total_votes"])], check=False)
    rc, output, _ = bounded_run(["pvecm", "delnode", params["name"]], params["timeout"])
    error = None
    if rc != 0:
        error = {"code": "delnode_failed", "message": summary(output) or "timed out"}
    module.exit_json(changed=True, error=error, delnode_output=output, **node_state())


def do_reset(module, _params):
    state = node_state()
    if is_full_member(state):  # the join completed after all: nothing of it is undone
        module.exit_json(changed=False, error=None, **state)
    subprocess.run(["systemctl", "disable", "--now", "--quiet", "corosync"], check=False)
    for path in (CLUSTER_CONF, LOCAL_CONF, AUTHKEY):
        if os.path.exists(path):
            os.remove(path)
    module.exit_json(changed=True, error=None, **node_state())


ACTIONS = {
    "status": do_status,
    "create": do_create,
    "add": do_add,
    "delnode": do_delnode,
    "reset": do_reset,
}


def main():
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "required": True, "choices": sorted(ACTIONS)},
            "name": {"type": "str", "default": ""},
            "member": {"type": "str", "default": ""},
            "link0": {"type": "str", "default": ""},
            "timeout": {"type": "int", "default": 120},
            "wait": {"type": "int", "default": 0},
            "wait_for": {"type": "str", "default": "nodelist", "choices": ["nodelist", "quorum"]},
            "lower_expected": {"type": "bool", "default": False},
        },
        required_if=[
            ("action", "create", ("name", "link0")),
            ("action", "add", ("member", "link0")),
            ("action", "delnode", ("name",)),
        ],
        supports_check_mode=True,
    )
    params = module.params
    if not shutil.which("pvecm"):
        error = {"code": "not_proxmox", "message": "pvecm not found: not a Proxmox VE node"}
        module.exit_json(changed=False, error=error, nodename=socket.gethostname().split(".")[0])
    if params["link0"]:
        try:
            ipaddress.ip_address(params["link0"])
        except ValueError:
            module.fail_json(msg=f"link0: not an IP address: {params['link0']!r}")
    if module.check_mode and params["action"] != "status":
        # A dry run reads, never changes: the step is reported as what would be done.
        module.exit_json(changed=True, error=None, would=params["action"], **node_state())
    ACTIONS[params["action"]](module, params)


if __name__ == "__main__":
    main()
