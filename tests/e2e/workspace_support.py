"""Workspaces on test hosts: the stack (node, Traefik, live server) and helpers."""

import http.client
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass

from portal.accounts.models import Plan
from portal.workspaces.actions import routes
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.factories import MembershipFactory
from tests.helpers import run_due_jobs
from tests.waiting import wait_for

DOMAIN = "ws.e2e.test"
TOKEN = "e2e-provider-token"


@dataclass
class Stack:
    node: object
    host: object
    traefik: object

    def request(self, workspace, method, path, body=None, headers=None):
        """An HTTP request to the workspace's subdomain through Traefik (no redirects)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.traefik.entry_port, timeout=10)
        try:
            connection.request(
                method,
                path,
                body=body,
                headers={"Host": f"{workspace.slug}.{DOMAIN}", **(headers or {})},
            )
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def login(self, workspace, password):
        form = urllib.parse.urlencode({"password": password})
        return self.request(
            workspace, "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )

    def routers(self) -> set[str]:
        return {r["name"] for r in self.traefik.api("/http/routers")}

    def run_on_host(self, command) -> subprocess.CompletedProcess:
        """The command's outcome on the node. Raises if SSH could not run it (ssh exits 255
        when it cannot connect or log in): "could not look" is never read as an answer."""
        result = self.host.run(command)
        if result.returncode == 255:
            raise HostUnreachable(
                f"could not run {command!r} on {self.host.name} over SSH: "
                f"{result.stderr.strip()[-500:]}"
            )
        return result

    def on_host(self, command) -> str:
        """The output of a command that must succeed on the node (else the test fails)."""
        result = self.run_on_host(command)
        assert result.returncode == 0, (
            f"{command!r} exited {result.returncode} on {self.host.name}: {result.stderr}"
        )
        return result.stdout.strip()

    def host_says(self, command, no: tuple[int, ...] = (1,)) -> bool:
        """A yes/no question to the node: exit 0 is yes, an exit in ``no`` (the command's own
        "not found") is no; any other exit (a typo, a missing tool, SSH) fails the test."""
        result = self.run_on_host(command)
        assert result.returncode == 0 or result.returncode in no, (
            f"{command!r} exited {result.returncode} on {self.host.name}: {result.stderr}"
        )
        return result.returncode == 0


class HostUnreachable(AssertionError):
    """A command could not be run on a test host (SSH failed)."""


def settle(timeout=600.0):
    """Act as worker and beat until no workspace has a job or a route to wait for."""

    def settled() -> bool:
        run_due_jobs(worker="e2e")
        routes.confirm_routes()
        waiting = Workspace.objects.filter(status__in=[S.PENDING, S.PROVISIONING, S.DELETING])
        return not (
            waiting.exists()
            or Workspace.objects.filter(
                current_job__status__in=["pending", "dispatched", "running"]
            ).exists()
            or routes.pending_confirmation()
        )

    wait_for(
        settled,
        timeout,
        interval=0.3,
        message=lambda: (
            "workspaces to settle: "
            + repr(list(Workspace.objects.values_list("slug", "status", "status_reason")))
        ),
    )


def customer_with_member(quota_gb=1):
    plan = Plan.objects.create(
        tier=f"e2e-{quota_gb}-{time.monotonic_ns()}",
        name="E2E",
        workspace_limit=3,
        disk_quota_gb=quota_gb,
        cpu_limit=1,
        memory_limit_mb=1024,
    )
    membership = MembershipFactory(customer__plan=plan)
    return membership.customer, membership.user


def fresh(workspace) -> Workspace:
    return Workspace.objects.select_related("node").get(pk=workspace.pk)


def assert_gone_from_host(stack, workspace):
    # getent: 2 = no such entry; systemctl cat: 1 = no such unit; test: 1 = false
    assert not stack.host_says(f"getent passwd {workspace.linux_username}", no=(2,))
    assert not stack.host_says(f"systemctl cat {workspace.unit_name}")
    assert not stack.host_says(f"test -e /srv/workspaces/{workspace.slug}")
    subvolumes = stack.on_host("btrfs subvolume list /srv/workspaces")
    assert not re.search(rf"(?<!\w){re.escape(workspace.slug)}(?!\w)", subvolumes), subvolumes
