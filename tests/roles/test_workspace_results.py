"""The workspace playbooks' rollback plan and workspace_results (the portal.roles collection's
filter plugin), called directly."""

from tests.roles.support import load

wr = load("playbooks/collections/ansible_collections/portal/roles/plugins/filter/workspaces.py")


def user(ok=True, created=True, message=""):
    return {"ok": ok, "created": created, "message": message}


def quota(ok=True, created=True, message="", used=None, backend="btrfs"):
    return {
        "ok": ok,
        "created": created,
        "used_bytes": used,
        "backend": backend,
        "message": message,
    }


def code_server(
    ok=True, step="", message="", config=True, unit=True, active="active", healthy=True
):
    return {
        "ok": ok,
        "step": step,
        "message": message,
        "config_created": config,
        "unit_created": unit,
        "active_state": active,
        "healthy": healthy,
    }


ITEMS = [{"slug": s} for s in ("done", "health", "quota", "user", "cut", "old")]
OUTCOMES = {
    "user": {s: user() for s in ("done", "health", "quota", "cut")}
    | {"user": user(ok=False, created=False, message="user: busy"), "old": user(created=False)},
    "quota": {
        "done": quota(used=16384),
        "health": quota(),
        "cut": quota(),
        "quota": quota(ok=False, created=False, message="quota: exists"),
        "old": quota(created=False),
    },
    "code_server": {
        "done": code_server(),
        "health": code_server(
            ok=False, step="health", message="health: no 200", active="activating", healthy=False
        ),
        "old": code_server(
            ok=False, step="unit", message="unit: x", config=False, unit=False, active=""
        ),
    },
}


def slugs(plan):
    return {key: [item["slug"] for item in items] for key, items in plan.items()}


def test_rollback_undoes_only_what_this_run_made_for_failed_items():
    plan = wr.rollback_plan([*ITEMS, "junk", {"no": "slug"}], OUTCOMES, "", "config")
    assert slugs(plan) == {
        "code_server": ["health"],
        "quota": ["health", "cut"],
        "user": ["health", "quota", "cut"],
    }


def test_an_error_of_the_node_counts_the_cut_off_step_as_made():
    plan = wr.rollback_plan(ITEMS, OUTCOMES, "Ensure x: boom", "config")
    assert slugs(plan)["code_server"] == ["health", "cut"]
    cut_at_quota = {**OUTCOMES, "quota": {}, "code_server": {}}
    plan = wr.rollback_plan([{"slug": "cut"}], cut_at_quota, "boom", "quota")
    assert slugs(plan) == {"code_server": [], "quota": ["cut"], "user": ["cut"]}


def test_rollback_errors_keep_the_first_failed_step_per_item():
    assert wr.rollback_errors(
        [
            {"a": {"ok": False, "message": "unit: x"}},
            {"a": {"ok": False, "message": "quota: y"}, "b": {"ok": True, "message": ""}},
            {"b": {"ok": False, "message": "user: z"}},
        ]
    ) == {"a": "unit: x", "b": "user: z"}


def test_create_results():
    plan = wr.rollback_plan(ITEMS, OUTCOMES, "", "config")
    results = wr.create_results(
        ITEMS,
        OUTCOMES,
        plan,
        "none",
        error="",
        step="config",
        undo_errors={"health": "quota: rm failed"},
        undo_error="",
    )
    assert results["done"] == {
        "ok": True,
        "step": "",
        "message": "",
        "quota_backend": "btrfs",
        "quota_used_bytes": 16384,
        "active_state": "active",
        "healthy": True,
    }
    assert results["health"] == {
        "ok": False,
        "step": "health",
        "message": "health: no 200; rollback failed: quota: rm failed",
        "quota_backend": "btrfs",
        "quota_used_bytes": None,
        "active_state": "inactive",
        "healthy": False,
    }
    assert (results["quota"]["step"], results["quota"]["message"]) == ("quota", "quota: exists")
    assert (results["user"]["step"], results["user"]["message"]) == ("user", "user: busy")
    assert results["user"]["quota_backend"] == "none"
    assert (results["cut"]["step"], results["cut"]["message"], results["cut"]["active_state"]) == (
        "config",
        "not done",
        "inactive",
    )
    assert (results["old"]["active_state"], results["old"]["message"]) == ("unknown", "unit: x")


def test_create_results_after_an_error_of_the_node_and_a_failed_rollback():
    plan = wr.rollback_plan(ITEMS, OUTCOMES, "Ensure x: boom", "config")
    results = wr.create_results(
        ITEMS,
        OUTCOMES,
        plan,
        "btrfs",
        error="Ensure x: boom",
        step="config",
        undo_errors={},
        undo_error="Ensure y: gone",
    )
    assert results["cut"]["message"] == "Ensure x: boom; rollback failed: Ensure y: gone"
    assert results["old"]["message"] == "unit: x"  # nothing of it was undone


def test_delete_results():
    items = [{"slug": s} for s in ("gone", "stuck", "cut", "kept")]
    results = wr.delete_results(
        items,
        {
            "gone": {"ok": True, "message": "", "active_state": "inactive"},
            "stuck": {"ok": False, "message": "systemctl stop: x", "active_state": "active"},
            "kept": {"ok": True, "message": "", "active_state": "inactive"},
        },
        {"gone": {"ok": True, "message": ""}, "kept": {"ok": True, "message": ""}},
        {
            "gone": {"ok": True, "message": ""},
            "kept": {"ok": True, "message": "account x is not this workspace's: left alone"},
        },
        "Ensure z: boom",
    )
    assert results == {
        "gone": {"ok": True, "step": "", "message": "", "active_state": "inactive"},
        "stuck": {
            "ok": False,
            "step": "unit",
            "message": "systemctl stop: x",
            "active_state": "active",
        },
        "cut": {
            "ok": False,
            "step": "unit",
            "message": "Ensure z: boom",
            "active_state": "unknown",
        },
        "kept": {
            "ok": True,
            "step": "",
            "message": "account x is not this workspace's: left alone",
            "active_state": "inactive",
        },
    }


def test_resize_results():
    items = [{"slug": s} for s in ("ok", "quota", "config", "health")]
    results = wr.resize_results(
        items,
        {
            "ok": quota(used=5),
            "quota": quota(ok=False, message="quota: full"),
            "config": quota(),
            "health": quota(),
        },
        {
            "ok": code_server(active="inactive", healthy=False),
            "health": code_server(ok=False, step="health", message="health: x", active=""),
        },
        "none",
        "",
    )
    assert results["ok"] == {
        "ok": True,
        "step": "",
        "message": "",
        "quota_backend": "btrfs",
        "quota_used_bytes": 5,
        "active_state": "inactive",
        "healthy": False,
    }
    assert (results["quota"]["step"], results["quota"]["message"]) == ("quota", "quota: full")
    assert (results["config"]["step"], results["config"]["message"]) == ("config", "not done")
    assert results["health"]["active_state"] == "unknown"
    assert wr.resize_results([{"slug": "n"}], {}, {}, "none", "E")["n"] == {
        "ok": False,
        "step": "quota",
        "message": "E",
        "quota_backend": "none",
        "quota_used_bytes": None,
        "active_state": "unknown",
        "healthy": False,
    }


def test_control_results():
    outcome = {
        "a": {"ok": True, "step": "", "message": "", "active_state": "active", "healthy": True}
    }
    results = wr.control_results(
        [{"slug": "a"}, {"slug": "b"}], outcome, {"a": {"used_bytes": 7}}, "status", ""
    )
    assert results == {
        "a": {**outcome["a"], "quota_used_bytes": 7},
        "b": {
            "ok": False,
            "step": "",
            "message": "not done",
            "active_state": "unknown",
            "quota_used_bytes": None,
        },
    }
    assert (
        "quota_used_bytes" not in wr.control_results([{"slug": "a"}], outcome, {}, "stop", "")["a"]
    )
    assert outcome["a"].keys() == {"ok", "step", "message", "active_state", "healthy"}
