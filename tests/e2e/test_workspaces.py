"""Workspaces on a real node: real code-server behind real Traefik, btrfs quotas, stop/start,
isolation between customers, delete that leaves nothing, and a rollback mid-provisioning.

The portal side runs in the test process (jobs executed as the worker would, routes confirmed
as the beat would); Traefik polls the portal's provider endpoint on a live server.
"""

from portal.workspaces import actions
from portal.workspaces.choices import S
from tests.e2e.workspace_support import assert_gone_from_host, customer_with_member, fresh, settle
from tests.waiting import wait_for


def test_two_customers_workspaces_from_create_to_delete(stack, api):
    customer_a, alice = customer_with_member()
    customer_b, bob = customer_with_member()
    wa = actions.do_create(customer_a, alice, "Alice's IDE")
    wb = actions.do_create(customer_b, bob, "Bob's IDE")
    settle()
    wa, wb = fresh(wa), fresh(wb)
    assert (wa.status, wb.status) == (S.RUNNING, S.RUNNING), (wa.status_reason, wb.status_reason)
    assert (
        wa.quota_backend == "btrfs"
        and {f"ws-{wa.slug}@http", f"ws-{wb.slug}@http"} <= stack.routers()
    )

    # Each IDE answers through Traefik, and only with its own password.
    for mine, other in ((wa, wb), (wb, wa)):
        status, headers, _ = stack.request(mine, "GET", "/healthz")
        assert status == 200
        status, headers, _ = stack.login(mine, other.password)
        assert status != 302 and "code-server-session" not in headers.get("Set-Cookie", "")
        status, headers, _ = stack.login(mine, mine.password)
        assert status == 302 and "code-server-session" in headers.get("Set-Cookie", "")

    # On the node: the user (home 0700), the unit as that user, the password only in a 0600 file.
    assert stack.on_host(f"stat -c %a /srv/workspaces/{wa.slug}") == "700"
    assert stack.on_host(f"systemctl show -p User --value {wa.unit_name}") == wa.linux_username
    assert wa.password not in stack.on_host(f"systemctl cat {wa.unit_name}")
    assert wa.password not in stack.on_host("ps -eo args")

    # Writing past the 1 GB quota fails on the host.
    write = stack.host.run(
        f"runuser -u {wa.linux_username} -- dd if=/dev/zero of=/srv/workspaces/{wa.slug}/big "
        "bs=1M count=1200 conv=fsync"
    )
    assert write.returncode != 0 and "quota exceeded" in write.stderr.lower(), write.stderr
    stack.host.run(f"rm -f /srv/workspaces/{wa.slug}/big")

    # The other customer cannot see or act on it.
    api.force_authenticate(bob)
    assert api.get(f"/api/workspaces/{wa.pk}/").status_code == 404
    assert api.post(f"/api/workspaces/{wa.pk}/stop/").status_code == 404
    assert api.delete(f"/api/workspaces/{wa.pk}/").status_code == 404

    # Stop and start.
    actions.do_operate([wa], "stop")
    settle()
    wa = fresh(wa)
    assert wa.status == S.STOPPED
    assert stack.on_host(f"systemctl is-active {wa.unit_name} || true") in ("inactive", "failed")
    # The route is unpublished when the stop is asked for; Traefik drops it on its next poll.
    wait_for(
        lambda: f"ws-{wa.slug}@http" not in stack.routers(),
        20,
        0.2,
        "Traefik to drop the stopped workspace's route",
        ignoring=(OSError,),
    )
    actions.do_operate([wa], "start")
    settle()
    wa = fresh(wa)
    assert wa.status == S.RUNNING
    assert stack.request(wa, "GET", "/healthz")[0] == 200

    # Logs and status.
    actions.do_operate([wa], "logs")
    settle()
    assert fresh(wa).recent_logs.strip()

    # Delete leaves no user, unit, subvolume, route or port behind.
    for workspace in (wa, wb):
        actions.do_delete(workspace)
    settle()
    for workspace in (wa, wb):
        gone = fresh(workspace)
        assert gone.status == S.DELETED and gone.port is None, gone.status_reason
        assert_gone_from_host(stack, gone)
        assert f"ws-{gone.slug}@http" not in stack.routers()


def test_a_failure_mid_provisioning_rolls_back_cleanly(stack):
    customer, user = customer_with_member()
    # Something already sits where the workspace's home must go: the quota step fails after
    # the user was created, so the rollback has a completed step to undo.
    stack.host.run("touch /srv/workspaces/doomed")
    try:
        workspace = actions.do_create(customer, user, "doomed")
        settle()
    finally:
        stack.host.run("rm -f /srv/workspaces/doomed")
    workspace = fresh(workspace)
    assert workspace.status == S.FAILED, workspace.status_reason
    assert "rolled back" in workspace.status_reason
    assert workspace.port is None and not workspace.on_node
    assert not stack.host_says(f"getent passwd {workspace.linux_username}", no=(2,))
    assert not stack.host_says(f"systemctl cat {workspace.unit_name}")
    assert f"ws-{workspace.slug}@http" not in stack.routers()
    actions.do_delete(workspace)
    assert fresh(workspace).status == S.DELETED
