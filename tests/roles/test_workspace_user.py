"""roles/workspace_user: its module (run in this process, check mode or harmless cases:
no account of this machine is changed) and its filter plugin."""

import pytest

from tests.roles.support import load, run

module = load("roles/workspace_user/library/workspace_user.py")
filters = load("roles/workspace_user/filter_plugins/workspace_user.py")


def test_present_in_check_mode_reports_a_new_account_as_created(capsys):
    result = run(
        module,
        {
            "items": [
                {
                    "slug": "alice-dev",
                    "username": "ws-no-such-user-x1",
                    "home": "/srv/ws/alice-dev",
                    "comment": "portal workspace alice-dev",
                }
            ]
        },
        capsys,
        check_mode=True,
    )
    assert result["changed"]
    assert result["outcome"] == {"alice-dev": {"ok": True, "created": True, "message": ""}}


def test_an_account_with_another_home_fails_only_its_item(capsys):
    result = run(
        module,
        {
            "items": [
                {"slug": "taken", "username": "root", "home": "/srv/ws/taken"},
                {"slug": "fresh", "username": "ws-no-such-user-x2", "home": "/srv/ws/fresh"},
                {"slug": "unsafe", "username": "Root;id", "home": "/srv/ws/unsafe"},
            ]
        },
        capsys,
        check_mode=True,
    )
    assert result["outcome"] == {
        "taken": {
            "ok": False,
            "created": False,
            "message": "user: account root exists with another home",
        },
        "fresh": {"ok": True, "created": True, "message": ""},
        "unsafe": {
            "ok": False,
            "created": False,
            "message": "user: refusing username 'Root;id' or home '/srv/ws/unsafe'",
        },
    }
    assert result["workspaces"]["taken"]["msg"] == "account root exists with another home"


def test_absent_leaves_another_account_alone_and_says_so_while_ok(capsys):
    result = run(
        module,
        {
            "state": "absent",
            "items": [
                {"slug": "mine", "username": "root", "home": "/srv/ws/mine"},
                {"slug": "gone", "username": "ws-no-such-user-x3", "home": "/srv/ws/gone"},
            ],
        },
        capsys,
    )
    assert not result["changed"]
    assert result["outcome"] == {
        "mine": {
            "ok": True,
            "created": False,
            "message": "account root is not this workspace's: left alone",
        },
        "gone": {"ok": True, "created": False, "message": ""},
    }


def test_items_without_a_username_are_refused_by_the_argument_spec(capsys):
    result = run(module, {"items": [{"slug": "a", "home": "/srv/ws/a"}]}, capsys)
    assert result["failed"] and "username" in result["msg"]


def test_module_items_build_home_and_comment_from_the_root():
    items = [{"slug": "alice-dev", "username": "ws-alice", "port": 8001, "quota_gb": 10}]
    assert filters.module_items(items, "/srv/ws", "portal workspace") == [
        {
            "slug": "alice-dev",
            "username": "ws-alice",
            "home": "/srv/ws/alice-dev",
            "comment": "portal workspace alice-dev",
        }
    ]
    assert filters.module_items(items, "/srv/ws") == [
        {"slug": "alice-dev", "username": "ws-alice", "home": "/srv/ws/alice-dev"}
    ]


@pytest.mark.parametrize(
    ("items", "problems"),
    [
        ([{"slug": "a", "username": "ws-a"}, {"slug": "b", "username": "ws-b"}], []),
        (["text"], ["item 1: slug is not a DNS label of 1-40 characters"]),
        ([{"slug": "a", "username": "Root"}], ["a: username is not [a-z_][a-z0-9_-]{0,31}"]),
        (
            [{"slug": "a", "username": "u"}, {"slug": "b", "username": "u"}],
            ["b: slug or username appears twice"],
        ),
        (
            [{"slug": "a", "username": "u"}, {"slug": "a", "username": "v"}],
            ["a: slug or username appears twice"],
        ),
    ],
)
def test_item_problems(items, problems):
    assert filters.item_problems(items) == problems
