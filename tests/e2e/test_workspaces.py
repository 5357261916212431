"""Workspaces on a real node: real code-server behind real Traefik, btrfs quotas, stop/start,
isolation between customers, delete that leaves nothing, and a rollback mid-provisioning.

The portal side runs in the test process (jobs executed as the worker would, routes confirmed
as the beat would); Traefik polls the portal's provider endpoint on a live server.
"""

import http.client
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings

from portal.accounts.models import Plan
from portal.workspaces import actions, confirm
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import MembershipFactory
from tests.helpers import run_due_jobs

DOMAIN = "ws.e2e.test"
TOKEN = "e2e-provider-token"


@dataclass
class Stack:
    node: object
    host: object
    traefik: object

    def request(self, workspace, method, path, body=None, headers=None):
        """An HTTP request to the workspace's subdomain through Traefik (no redirects)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.traefik.entry_port,
                                                timeout=10)
        try:
            connection.request(method, path, body=body, headers={
                "Host": f"{workspace.slug}.{DOMAIN}", **(headers or {})})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def login(self, workspace, password):
        form = urllib.parse.urlencode({"password": password})
        return self.request(workspace, "POST", "/login", form, {
            "Content-Type": "application/x-www-form-urlencoded"})

    def routers(self) -> set[str]:
        return {r["name"] for r in self.traefik.api("/http/routers")}

    def on_host(self, command) -> str:
        result = self.host.run(command)
        return result.stdout.strip() if result.returncode == 0 else ""


@pytest.fixture(autouse=True)
def no_broker():
    with mock.patch("portal.jobs.tasks.run_job.apply_async"), \
            mock.patch("portal.workspaces.tasks.confirm_routes.delay"):
        yield


@pytest.fixture
def stack(test_hosts, portal_nodes, volume_host, traefik, code_server_package, live_server,
          settings, tmp_path):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 5
    settings.CODE_SERVER_PACKAGE = str(code_server_package)
    settings.TRAEFIK_PROVIDER_TOKEN = TOKEN
    settings.WORKSPACES_DOMAIN = DOMAIN
    settings.TRAEFIK_ENTRYPOINTS = ["web"]
    settings.TRAEFIK_TLS = False
    settings.WORKSPACE_ROUTE_TIMEOUT = 30
    proxy = traefik(f"{live_server.url}/api/traefik/config?token={TOKEN}",
                    poll_interval="500ms")
    settings.TRAEFIK_API_URL = proxy.api_url
    node = next(n for n in portal_nodes if n.name == volume_host.name)
    node.workspace_quota_backend = "btrfs"
    node.workspace_root = "/srv/workspaces"
    node.save()
    return Stack(node, volume_host, proxy)


def settle(timeout=600.0):
    """Act as worker and beat until no workspace has a job or a route to wait for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_due_jobs(worker="e2e")
        confirm.confirm_routes()
        waiting = Workspace.objects.filter(status__in=[S.PENDING, S.PROVISIONING, S.DELETING])
        if not (waiting.exists() or Workspace.objects.filter(
                current_job__status__in=["pending", "dispatched", "running"]).exists()
                or confirm.pending_confirmation()):
            return
        time.sleep(0.3)
    raise AssertionError("workspaces did not settle: " + repr(list(
        Workspace.objects.values_list("slug", "status", "status_reason"))))


def customer_with_member(quota_gb=1):
    plan = Plan.objects.create(tier=f"e2e-{quota_gb}-{time.monotonic_ns()}", name="E2E",
                               workspace_limit=3, disk_quota_gb=quota_gb, cpu_limit=1,
                               memory_limit_mb=1024)
    membership = MembershipFactory(customer__plan=plan)
    return membership.customer, membership.user


def fresh(workspace) -> Workspace:
    return Workspace.objects.select_related("node").get(pk=workspace.pk)


def assert_gone_from_host(stack, workspace):
    assert stack.on_host(f"getent passwd {workspace.linux_username}") == ""
    assert stack.on_host(f"systemctl cat {workspace.unit_name} >/dev/null 2>&1 && echo unit") \
        == ""
    assert stack.on_host(f"test -e /srv/workspaces/{workspace.slug} && echo there") == ""
    assert stack.on_host(f"btrfs subvolume list /srv/workspaces | grep -w {workspace.slug}") \
        == ""


def test_two_customers_workspaces_from_create_to_delete(stack, api):
    customer_a, alice = customer_with_member()
    customer_b, bob = customer_with_member()
    wa = actions.do_create(customer_a, alice, "Alice's IDE")
    wb = actions.do_create(customer_b, bob, "Bob's IDE")
    settle()
    wa, wb = fresh(wa), fresh(wb)
    assert (wa.status, wb.status) == (S.RUNNING, S.RUNNING), (wa.status_reason,
                                                              wb.status_reason)
    assert wa.quota_backend == "btrfs" and {f"ws-{wa.slug}@http", f"ws-{wb.slug}@http"} <= \
        stack.routers()

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
        "bs=1M count=1200 conv=fsync")
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
    assert f"ws-{wa.slug}@http" not in stack.routers()
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
    assert stack.on_host(f"getent passwd {workspace.linux_username}") == ""
    assert stack.on_host(f"systemctl cat {workspace.unit_name} >/dev/null 2>&1 && echo unit") \
        == ""
    assert f"ws-{workspace.slug}@http" not in stack.routers()
    actions.do_delete(workspace)
    assert fresh(workspace).status == S.DELETED
