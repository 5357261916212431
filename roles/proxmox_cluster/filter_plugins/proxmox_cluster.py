"""proxmox_cluster's decisions, made once on the controller from every node's state (the
module proxmox_cluster_pvecm, action=status): who anchors the cluster, what is created,
removed and joined, which pre-join checks fail (structured errors), and each node's outcome.

A refusal anywhere stops the whole formation before anything changes: the refused nodes get
their own code, the nodes that would have been created or joined `blocked`; the cluster's
existing members stay reported as members.
"""

from __future__ import annotations

import ipaddress


def error(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def plan(states: dict, name: str, init: str, link0: dict, remove=(), hosts=()) -> dict:
    """What to do, in order. states: {inventory host: node state} of the reachable nodes;
    hosts: every host of the play in its order (also unreachable ones)."""
    order = [h for h in (hosts or states) if h in states]
    nodenames = {h: states[h].get("nodename", h) for h in order}
    removed = removed_names(remove or (), nodenames, link0)
    is_removed = lambda h: nodenames[h] in removed  # noqa: E731
    errors = {h: e for h in order if (e := node_refusal(h, states[h], name, init, link0))}
    anchor = pick_anchor(order, states, name, init, is_removed)
    nodelist = states[anchor]["nodelist"] if anchor else {}
    removed |= {n for n, node in nodelist.items() if node.get("ring0_addr") in set(remove or ())}
    if anchor:
        errors.update(other_clusters(order, states, name, anchor, nodelist, errors))
    if not anchor and init not in states:
        for h in order:
            errors.setdefault(h, error("blocked", f"the init node {init} is not reachable"))
    joiners = [h for h in order if not states[h].get("in_cluster") and h not in errors]
    to_create = not anchor and init in states
    if to_create:
        joiners = [h for h in joiners if h != init]
    removals = [n for n in sorted(removed) if n in nodelist]
    for h in order:
        if is_removed(h) and states[h].get("in_cluster") and h not in errors:
            errors[h] = error(
                "leftover_config",
                f"{nodenames[h]} is listed in proxmox_cluster_remove but still runs in the"
                " cluster: reprovision it before it is removed and re-joins",
            )
    errors.update(join_refusals(joiners, nodenames, link0, nodelist, removed, errors))
    if errors:
        blocked = ", ".join(f"{h}: {e['code']}" for h, e in errors.items())
        for h in order:
            if h not in errors and not (states[h].get("in_cluster") and nodenames[h] in nodelist):
                errors[h] = error("blocked", f"cluster formation refused ({blocked})")
        return refused(errors, nodenames, anchor)
    return {
        "errors": {},
        "anchor": anchor or init,
        "create": to_create,
        "member_address": link0.get(anchor or init, ""),
        "remove": removals,
        "joiners": joiners,
        "members": [h for h in order if h not in joiners and not (to_create and h == init)],
        "nodenames": nodenames,
    }


def removed_names(remove, nodenames: dict, link0: dict) -> set:
    """proxmox_cluster_remove's entries as node names: a node name stays, an inventory host
    becomes its node name, a link0 address the name of the host that has it."""
    by_address = {str(address): nodenames.get(host, host) for host, address in link0.items()}
    return {nodenames.get(entry) or by_address.get(entry) or entry for entry in remove}


def refused(errors: dict, nodenames: dict, anchor) -> dict:
    """Nothing to do; the anchor (if a cluster exists) still gives the summary."""
    return {
        "errors": errors,
        "anchor": anchor,
        "create": False,
        "member_address": "",
        "remove": [],
        "joiners": [],
        "members": [],
        "nodenames": nodenames,
    }


def node_refusal(host, state, name, init, link0):
    """The checks on one node's own state, before anything changes."""
    if state.get("error"):
        return state["error"]
    address = link0.get(host)
    if not valid_ip(address):
        return error("invalid_input", f"proxmox_cluster_link0 has no IP address for {host}")
    if state["in_cluster"]:
        if state["cluster_name"] == name:
            return None
        code = "name_mismatch" if host == init else "other_cluster"
        return error(
            code,
            f"{state['nodename']} is in cluster '{state['cluster_name']}', not '{name}'",
        )
    if state["corosync_running"]:
        return error(
            "already_member",
            f"corosync is already running on {state['nodename']}, is this node already in a"
            " cluster?! (no /etc/pve/corosync.conf)",
        )
    if state["leftovers"]:
        return error(
            "leftover_config",
            f"{state['nodename']} is in no cluster but has {', '.join(state['leftovers'])}"
            " from an earlier one",
        )
    if state["guests"]:
        message = f"{state['nodename']}: this host already contains virtual guests"
        return error("has_guests", message)
    if not state["link0_local"]:
        return error("link0_not_local", f"link0 {address} is not an address of {state['nodename']}")
    return None


def valid_ip(value) -> bool:
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def pick_anchor(order, states, name, init, is_removed):
    """The member that already holds the named cluster: the init node if it does, else the
    first surviving (not removed) member; None when the cluster is still to be created."""
    candidates = [
        h
        for h in order
        if states[h].get("in_cluster")
        and states[h].get("cluster_name") == name
        and not is_removed(h)
    ]
    if init in candidates:
        return init
    quorate = [h for h in candidates if states[h].get("quorate")]
    return (quorate or candidates or [None])[0]


def other_clusters(order, states, name, anchor, nodelist, errors):
    """Nodes in a cluster of the same name that is not the anchor's (a different nodelist)."""
    found = {}
    for h in order:
        state = states[h]
        if h in errors or h == anchor or not state.get("in_cluster"):
            continue
        if state["nodename"] not in nodelist:
            found[h] = error(
                "other_cluster",
                f"{state['nodename']} is in another cluster named '{name}' (not in the"
                f" nodelist of {states[anchor]['nodename']})",
            )
    return found


def join_refusals(joiners, nodenames, link0, nodelist, removed, errors):
    """A joiner whose name or link0 the cluster already has (not being removed), or two
    joiners with one address."""
    found = {}
    kept = {n: node for n, node in nodelist.items() if n not in removed}
    for h in joiners:
        if h in errors:
            continue
        if nodenames[h] in kept:
            found[h] = error(
                "already_member",
                f"the cluster's nodelist already has {nodenames[h]}: list it in"
                " proxmox_cluster_remove to remove it before it re-joins",
            )
            continue
        users = [n for n, node in kept.items() if node.get("ring0_addr") == link0[h]]
        users += [nodenames[o] for o in joiners if o != h and link0.get(o) == link0[h]]
        if users:
            found[h] = error(
                "address_in_use",
                f"link0 {link0[h]} of {nodenames[h]} is already used by {', '.join(users)}",
            )
    return found


def stopped(the_plan: dict, anchor_error: dict) -> dict:
    """The cluster could not be created, or is not quorate, or a removal failed: the anchor
    reports why, and no node joins (each `blocked`)."""
    why = f"the cluster on {the_plan['anchor']} is not ready: {anchor_error['code']}"
    failures = {h: {"error": error("blocked", why)} for h in the_plan["joiners"]}
    failures[the_plan["anchor"]] = {"error": anchor_error}
    return failures


def outcome(host: str, the_plan: dict, joins: dict, final: dict, check_mode=False) -> dict:
    """One node's report: created | joined | member | error, with the error or None. In
    check mode the planned state (nothing was changed to verify)."""
    if host in the_plan["errors"]:
        return {"state": "error", "error": the_plan["errors"][host]}
    join = joins.get(host) or {}
    if join.get("error"):
        return {"state": "error", "error": join["error"]}
    if final.get("error"):
        return {"state": "error", "error": final["error"]}
    if check_mode:
        return {"state": planned_state(host, the_plan), "error": None}
    # A formation checks the whole nodelist is there; a refused one only that the existing
    # members are still quorate (a node being replaced may be missing).
    member = final.get("quorate_member" if the_plan["errors"] else "full_member")
    if not member:
        message = f"not a quorate member with its whole nodelist: {final.get('output', '')}"
        return {"state": "error", "error": error("quorum_timeout", message.strip())}
    return {"state": planned_state(host, the_plan), "error": None}


def planned_state(host: str, the_plan: dict) -> str:
    if the_plan["create"] and host == the_plan["anchor"]:
        return "created"
    if host in the_plan["joiners"]:
        return "joined"
    return "member"


def summary(name: str, anchor_state: dict, expected: int) -> dict:
    """The cluster as the anchor sees it at the end."""
    return {
        "name": anchor_state.get("cluster_name") or name,
        "quorate": bool(anchor_state.get("quorate")),
        "members": list(anchor_state.get("members") or []),
        "expected": expected,
    }


class FilterModule:
    def filters(self):
        return {
            "proxmox_cluster_plan": plan,
            "proxmox_cluster_stopped": stopped,
            "proxmox_cluster_outcome": outcome,
            "proxmox_cluster_summary": summary,
        }
