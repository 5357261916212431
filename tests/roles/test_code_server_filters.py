"""roles/code_server's decisions (filter_plugins/code_server.py), called directly."""

import pytest

from tests.roles.support import load

cs = load("roles/code_server/filter_plugins/code_server.py")

GOOD = {
    "slug": "a",
    "username": "ws-a",
    "port": 8001,
    "bind_address": "10.0.0.2",
    "cpu_quota_percent": 100,
    "memory_max_mb": 2048,
}


@pytest.mark.parametrize(
    ("items", "checks", "problems"),
    [
        ([GOOD], "full", []),
        ([{**GOOD, "port": 80}], "full", ["a: port is not an integer from 1024 to 65535"]),
        ([{**GOOD, "port": 80}], "slug", []),
        (
            [{**GOOD, "bind_address": "a b"}],
            "address",
            ["a: bind_address is not an IP address or a host name"],
        ),
        ([{**GOOD, "bind_address": "fd00::2"}], "full", []),
        ([GOOD, {**GOOD, "slug": "b"}], "address", ["b: bind_address and port appear twice"]),
        ([GOOD, GOOD], "slug", ["a: slug appears twice"]),
        ([{**GOOD, "username": None}], "address", []),
        ([{**GOOD, "username": None}], "full", ["a: username is not [a-z_][a-z0-9_-]{0,31}"]),
        (
            [{**GOOD, "cpu_quota_percent": 0}],
            "full",
            ["a: cpu_quota_percent is not an integer from 1 to 99999"],
        ),
        (
            [{**GOOD, "memory_max_mb": 5}],
            "full",
            ["a: memory_max_mb is not an integer from 10 to 9999999"],
        ),
        (
            [42, {"slug": "{{ lookup('pipe', 'id') }}"}],
            "slug",
            [
                "item 1: slug is not a DNS label of 1-40 characters",
                "item 2: slug is not a DNS label of 1-40 characters",
            ],
        ),
    ],
)
def test_item_problems(items, checks, problems):
    assert cs.item_problems(items, checks) == problems


def test_bind_and_health_urls_put_ipv6_in_brackets_and_skip_what_is_asked():
    items = [GOOD, {"slug": "b", "bind_address": "fd00::2", "port": "8002"}, {"slug": "c"}]
    assert cs.health_items(items, skip={"a": "failed"}) == [
        {"slug": "b", "url": "http://[fd00::2]:8002/healthz"},
        {"slug": "c", "url": "http://127.0.0.1:1/healthz"},
    ]
    contexts = cs.render_contexts([GOOD], "/srv/ws")
    assert contexts[0]["context"]["code_server_bind"] == "10.0.0.2:8001"
    assert contexts[0]["context"]["code_server_home"] == "/srv/ws/a"
    assert (contexts[0]["slug"], contexts[0]["owner"]) == ("a", "ws-a")


def test_unit_states_parse_systemctl_show():
    stdout = (
        "Id=code-server-a.service\nLoadState=loaded\nActiveState=active\n"
        "UnitFileState=enabled\n\nId=code-server-b.service\nLoadState=not-found\n"
        "ActiveState=inactive\nUnitFileState=\n"
    )
    assert cs.unit_states(stdout) == {
        "a": {
            "Id": "code-server-a.service",
            "LoadState": "loaded",
            "ActiveState": "active",
            "UnitFileState": "enabled",
        },
        "b": {
            "Id": "code-server-b.service",
            "LoadState": "not-found",
            "ActiveState": "inactive",
            "UnitFileState": "",
        },
    }
    assert cs.unit_states("") == {}
    assert cs.unit_names(["a"]) == ["code-server-a.service"]


def test_systemctl_errors_keep_only_the_failed_units():
    results = [
        {"failed": False, "_code_server_slug": "a", "ansible_loop_var": "_code_server_slug"},
        {
            "failed": True,
            "stderr": "Unit not found." + "x" * 400,
            "_code_server_slug": "b",
            "ansible_loop_var": "_code_server_slug",
        },
        {
            "failed": True,
            "stderr": "",
            "msg": "timeout",
            "_code_server_slug": "c",
            "ansible_loop_var": "_code_server_slug",
        },
        {"failed": True, "_code_server_slug": "d", "ansible_loop_var": "_code_server_slug"},
    ]
    errors = cs.systemctl_errors(results, ["enable", "--now"])
    assert set(errors) == {"b", "c", "d"}
    assert errors["b"] == "systemctl enable --now: " + ("Unit not found." + "x" * 400)[:300]
    assert errors["c"] == "systemctl enable --now: timeout"
    assert errors["d"] == "systemctl enable --now: failed"


def files(**changes):
    return {
        "ok": True,
        "msg": "",
        "step": "",
        "config_changed": False,
        "config_created": False,
        "unit_changed": False,
        "unit_created": False,
        **changes,
    }


def test_start_plan_starts_what_should_run_and_restarts_what_changed():
    items = [{"slug": s} for s in ("new", "running", "changed", "unit-only", "disabled")]
    states = {
        "new": {"ActiveState": "inactive"},
        "running": {"ActiveState": "active", "UnitFileState": "enabled"},
        "changed": {"ActiveState": "active", "UnitFileState": "enabled"},
        "unit-only": {"ActiveState": "activating", "UnitFileState": "enabled"},
        "disabled": {"ActiveState": "active", "UnitFileState": "disabled"},
    }
    written = {
        "new": files(),
        "running": files(),
        "changed": files(config_changed=True),
        "unit-only": files(unit_changed=True),
        "disabled": files(),
    }
    assert cs.start_plan(items, states, written, True) == {
        "start": ["new", "disabled"],
        "restart": ["changed", "unit-only"],
    }
    # Resize: never start; a unit change alone (limits) needs no restart.
    assert cs.start_plan(items, states, written, False) == {"start": [], "restart": ["changed"]}


def test_configure_outcome_reports_the_first_step_that_failed():
    items = [{"slug": s} for s in ("ok", "files", "unit", "health", "stopped")]
    written = {
        "ok": files(config_created=True, unit_created=True),
        "files": files(ok=False, step="unit", msg="Permission denied: /x"),
        "unit": files(),
        "health": files(),
        "stopped": files(),
    }
    health = {
        "ok": {"healthy": True, "active_state": "active"},
        "health": {"healthy": False, "active_state": "activating", "msg": "no 200"},
    }
    out = cs.configure_outcome(
        items, written, {"unit": "systemctl enable --now: boom"}, health, True
    )
    assert out["ok"] == {
        "ok": True,
        "step": "",
        "message": "",
        "config_created": True,
        "unit_created": True,
        "active_state": "active",
        "healthy": True,
    }
    assert (out["files"]["step"], out["files"]["message"]) == (
        "unit",
        "unit: Permission denied: /x",
    )
    assert (out["unit"]["step"], out["unit"]["message"]) == ("unit", "systemctl enable --now: boom")
    assert (out["health"]["step"], out["health"]["message"]) == ("health", "health: no 200")
    assert out["stopped"]["message"] == "health: not checked"
    # Resize leaves a stopped workspace stopped: not running is no failure then.
    assert cs.configure_outcome(items, written, {}, health, False)["stopped"]["ok"]
    assert (
        cs.configure_outcome([{"slug": "f"}], {"f": files(ok=False, msg="m")}, {}, {}, True)["f"][
            "step"
        ]
        == "config"
    )


def test_absent_outcome():
    items = [{"slug": s} for s in ("gone", "stuck", "files")]
    out = cs.absent_outcome(
        items,
        {"gone": files(), "stuck": files(), "files": files(ok=False, msg="Busy: /u")},
        {"stuck": "systemctl stop: timeout"},
        {"stuck": {"ActiveState": "deactivating"}},
    )
    assert out == {
        "gone": {
            "ok": True,
            "step": "",
            "message": "",
            "active_state": "inactive",
            "healthy": False,
        },
        "stuck": {
            "ok": False,
            "step": "",
            "message": "systemctl stop: timeout",
            "active_state": "deactivating",
            "healthy": False,
        },
        "files": {
            "ok": False,
            "step": "",
            "message": "files: Busy: /u",
            "active_state": "",
            "healthy": False,
        },
    }


def test_control_outcome():
    items = [{"slug": s} for s in ("up", "missing", "broken", "slow")]
    health = {
        "up": {"healthy": True, "active_state": "active"},
        "slow": {"healthy": False, "active_state": "activating", "msg": "now"},
    }
    states = {s: {"ActiveState": "failed"} for s in ("up", "missing", "broken", "slow")}
    out = cs.control_outcome(
        items,
        "restart",
        ["missing"],
        {"broken": "systemctl restart: x"},
        health,
        {"slow": {"msg": "no 200 after 90 s"}},
        states,
        [],
    )
    assert out["up"] == {
        "ok": True,
        "step": "",
        "message": "",
        "active_state": "active",
        "healthy": True,
    }
    assert out["missing"]["message"] == "no unit code-server-missing.service on this node"
    assert out["missing"]["active_state"] == "failed"
    assert out["broken"]["message"] == "systemctl restart: x"
    assert out["slow"]["message"] == "health: no 200 after 90 s"
    assert cs.control_outcome(items, "status", [], {}, health, {}, states, [])["slow"]["ok"]
    logs = [
        {"_code_server_slug": "up", "ansible_loop_var": "_code_server_slug", "stdout": "line"},
        {"_code_server_slug": "slow", "skipped": True, "ansible_loop_var": "_code_server_slug"},
    ]
    out = cs.control_outcome(items[:1] + items[3:], "logs", [], {}, {}, {}, states, logs)
    assert out["up"] == {
        "ok": True,
        "step": "",
        "message": "",
        "active_state": "failed",
        "logs": "line",
    }
    assert out["slow"]["logs"] == ""
