"""roles/workspace_quota: its module on a temporary root with backend none (a plain
directory, owned by root: no account or quota of this machine is changed) and its filters."""

import os

import pytest

from tests.roles.support import load, run

module = load("roles/workspace_quota/library/workspace_quota.py")
filters = load("roles/workspace_quota/filter_plugins/workspace_quota.py")


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "workspaces"
    path.mkdir()
    return path


def quota(root, state, items, capsys, **extra):
    return run(
        module,
        {"root": str(root), "backend": "none", "state": state, "items": items, **extra},
        capsys,
    )


def test_present_makes_the_home_then_finds_it_there(root, capsys):
    item = {"slug": "alice-dev", "owner": "root", "limit_bytes": 1 << 30}
    first = quota(root, "present", [item], capsys)
    assert first["changed"] and (root / "alice-dev").is_dir()
    assert oct(os.stat(root / "alice-dev").st_mode & 0o777) == "0o700"
    assert first["outcome"] == {
        "alice-dev": {
            "ok": True,
            "created": True,
            "used_bytes": None,
            "backend": "none",
            "message": "",
        }
    }
    again = quota(root, "present", [item], capsys)
    assert not again["changed"] and again["outcome"]["alice-dev"]["created"] is False


def test_a_failing_home_is_reported_with_its_step_and_the_others_go_on(root, capsys):
    (root / "file-here").write_text("not a home")
    result = quota(
        root,
        "present",
        [
            {"slug": "file-here", "owner": "root", "limit_bytes": 1},
            {"slug": "no-owner", "owner": "ws-no-such-user-q1", "limit_bytes": 1},
            {"slug": "fine", "owner": "root", "limit_bytes": 1},
        ],
        capsys,
    )
    outcome = result["outcome"]
    assert outcome["file-here"]["message"] == (
        f"quota: {root}/file-here exists and is not a directory"
    )
    assert outcome["no-owner"]["message"] == "quota: user ws-no-such-user-q1 does not exist"
    assert not outcome["file-here"]["ok"] and not outcome["no-owner"]["ok"]
    assert outcome["fine"] == {
        "ok": True,
        "created": True,
        "used_bytes": None,
        "backend": "none",
        "message": "",
    }


def test_create_false_reports_a_missing_home(root, capsys):
    result = quota(
        root, "present", [{"slug": "gone", "owner": "root", "limit_bytes": 1}], capsys, create=False
    )
    assert result["outcome"]["gone"]["message"] == f"quota: {root}/gone is missing"
    assert not (root / "gone").exists()


def test_absent_removes_the_home_and_usage_keeps_the_module_message(root, capsys):
    (root / "old").mkdir()
    (root / "old" / "data").write_text("x")
    removed = quota(root, "absent", [{"slug": "old"}, {"slug": "never-there"}], capsys)
    assert removed["changed"] and not (root / "old").exists()
    assert removed["outcome"] == {
        slug: {"ok": True, "created": False, "used_bytes": None, "backend": "none", "message": ""}
        for slug in ("old", "never-there")
    }
    usage = quota(root, "usage", [{"slug": "../x"}], capsys)
    assert usage["outcome"]["../x"]["message"] == "refusing slug '../x'"  # no "quota: " prefix


def test_module_items_compute_the_limit_and_the_project_id():
    items = [{"slug": "a", "id": 7, "username": "ws-a", "quota_gb": 10, "port": 8001}]
    assert filters.module_items(items, 2000000) == [
        {"slug": "a", "project_id": 2000007, "owner": "ws-a", "limit_bytes": 10 * 1073741824}
    ]
    assert filters.module_items(items, "100", full=False) == [{"slug": "a", "project_id": 107}]


@pytest.mark.parametrize(
    ("items", "full", "problems"),
    [
        ([{"slug": "a", "id": 1, "username": "u", "quota_gb": 10}], True, []),
        ([{"slug": "a", "id": "x"}], False, ["a: id is not a positive integer"]),
        ([{"slug": "a", "id": 1}], False, []),
        ([{"slug": "a", "id": 1}], True, ["a: username is not [a-z_][a-z0-9_-]{0,31}"]),
        (
            [{"slug": "a", "id": 1, "username": "u", "quota_gb": 0}],
            True,
            ["a: quota_gb is not an integer from 1 to 999999"],
        ),
        (
            [{"slug": "a", "id": 1, "username": "u", "quota_gb": 1}] * 2,
            True,
            ["a: slug appears twice"],
        ),
        ([{"slug": "a", "id": 1}] * 2, False, []),
        ([None], True, ["item 1: slug is not a DNS label of 1-40 characters"]),
    ],
)
def test_item_problems(items, full, problems):
    assert filters.item_problems(items, full) == problems
