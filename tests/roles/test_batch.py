"""The module_utils the roles' batch modules share (portal.roles collection)."""

import pytest

from tests.roles.support import load

batch = load("playbooks/collections/ansible_collections/portal/roles/plugins/module_utils/batch.py")


def fresh(_item):
    return {"ok": True, "msg": "", "done": False}


def test_items_spec_requires_a_slug_and_adds_the_options():
    spec = batch.items_spec(owner={"type": "str"})
    assert spec["type"] == "list" and spec["elements"] == "dict" and spec["required"]
    assert spec["options"] == {"slug": {"type": "str", "required": True}, "owner": {"type": "str"}}


def test_one_failing_item_does_not_stop_the_others():
    def handle(item, result):
        if item["slug"] == "bad-one":
            raise batch.ItemError("it broke")
        if item["slug"] == "no-file":
            raise FileNotFoundError(2, "No such file or directory", "/etc/x")
        result["done"] = True

    results = batch.run_items(
        [{"slug": "a"}, {"slug": "bad-one"}, {"slug": "no-file"}, {"slug": "z"}], handle, fresh
    )
    assert results == {
        "a": {"ok": True, "msg": "", "done": True},
        "bad-one": {"ok": False, "msg": "it broke", "done": False},
        "no-file": {"ok": False, "msg": "No such file or directory: /etc/x", "done": False},
        "z": {"ok": True, "msg": "", "done": True},
    }


@pytest.mark.parametrize("slug", ["../etc", "A", "-x", "a" * 41, "a_b", ""])
def test_an_unsafe_slug_is_refused_without_being_handled(slug):
    handled = []
    results = batch.run_items([{"slug": slug}], lambda item, result: handled.append(item), fresh)
    assert results[slug] == {"ok": False, "msg": f"refusing slug {slug!r}", "done": False}
    assert handled == []


def test_other_errors_are_not_swallowed():
    def handle(item, result):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        batch.run_items([{"slug": "a"}], handle, fresh)


def test_step_message_names_the_step_only_for_a_failure():
    assert batch.step_message({"ok": True, "msg": "usage unknown"}, "quota") == ""
    assert batch.step_message({"ok": False, "msg": "no space"}, "quota") == "quota: no space"
