"""Workspaces on test hosts: the stack (node, Traefik, live server) and helpers."""

import http.client
import time
import urllib.parse
from dataclasses import dataclass

from portal.accounts.models import Plan
from portal.workspaces.actions import routes
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


def settle(timeout=600.0):
    """Act as worker and beat until no workspace has a job or a route to wait for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_due_jobs(worker="e2e")
        routes.confirm_routes()
        waiting = Workspace.objects.filter(status__in=[S.PENDING, S.PROVISIONING, S.DELETING])
        if not (waiting.exists() or Workspace.objects.filter(
                current_job__status__in=["pending", "dispatched", "running"]).exists()
                or routes.pending_confirmation()):
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
