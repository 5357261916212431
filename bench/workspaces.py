"""workspace_batch_speedup: 100 workspaces on one node, one batched run vs one run each.

One real systemd test host with a btrfs volume (tests/hosts) is the workspace node, reached
over SSH; code-server comes from the test hosts' air-gapped artifact. A worker of its own
(consuming the node's queue) runs the jobs with the same settings the portal launches with.

- batched: ``count`` workspaces created in one transaction (as a burst of creates commits
  together), so ``provision_pending`` launches ONE ``workspace_create.yml`` run for all of
  them; timed from the first create to the last workspace ``running``.
- one run each: ``singles`` workspaces (at least 2) created one after another before the
  batch, each waited for until ``running`` before the next; the median time per workspace
  times ``count`` is the time 100 separate runs take (running all 100 would take most of
  the bench budget).

speedup = (median single x count) / batched. The test host is discarded afterwards.
"""

import time
from pathlib import Path

from bench import stats
from bench.context import Context, OutOfTime

QUEUE = "bench-workspaces"
BATCH_SECONDS_EACH = 1.25  # a batched workspace: 0.95 s measured, 1.22 s on a slower machine


def _node(host, key_path):
    from portal.nodes.models import Credential, Node

    credential = Credential.objects.create(
        name=f"bench-ws-{host.name}", kind="ssh_key", secret=Path(key_path).read_text()
    )
    return Node.objects.create(
        name=f"bench-ws-{host.name}",
        address=host.address,
        ssh_port=host.ssh_port,
        ssh_user="root",
        purpose="workspace_host",
        credential=credential,
        queue=QUEUE,
        workspace_root="/srv/workspaces",
        workspace_quota_backend="btrfs",
        workspace_port_start=8001,
        workspace_port_end=8300,
    )


def _customer(count: int):
    from portal.accounts.models import Customer, Membership, Plan

    plan = Plan.objects.create(
        tier="bench-ws",
        name="Bench",
        workspace_limit=count + 50,
        disk_quota_gb=1,
        cpu_limit=1,
        memory_limit_mb=512,
    )
    customer = Customer.objects.create(name="Bench", email="bench-ws@example.com", plan=plan)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench-ws-owner", password=None)
    Membership.objects.create(customer=customer, user=user, role="owner")
    return customer, user


def _wait_settled(ids: list[int], ctx: Context, timeout: float) -> dict:
    from portal.workspaces.models import Workspace

    deadline = min(time.monotonic() + timeout, ctx.deadline)
    while time.monotonic() < deadline:
        statuses = dict(Workspace.objects.filter(pk__in=ids).values_list("pk", "status"))
        if all(status in ("running", "failed", "deleted") for status in statuses.values()):
            failed = Workspace.objects.filter(pk__in=ids, status="failed").values_list(
                "slug", "status_reason"
            )[:3]
            if failed:
                raise RuntimeError(f"workspaces failed: {list(failed)}")
            return statuses
        ctx.check_workers()
        time.sleep(0.2)
    raise OutOfTime(f"{len(ids)} workspaces not running in {timeout:.0f}s")


def _create(customer, user, name, node):
    from portal.workspaces import actions

    # The bench's local nodes are workspace hosts too: name the test host.
    return actions.do_create(customer, user, name, node=node)


def measure(ctx: Context, count: int = 100, singles: int = 5) -> dict:
    from django.conf import settings
    from django.db import transaction

    from bench.stack import start_worker, wait_worker
    from tests.hosts import boot_hosts, unavailable_reason
    from tests.hosts.code_server import code_server_artifact

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"test hosts unavailable: {reason}")
    package = str(code_server_artifact())
    settings.CODE_SERVER_PACKAGE = package
    settings.TRAEFIK_API_URL = ""  # routes are not what this figure measures
    env = {**ctx.env, "CODE_SERVER_PACKAGE": package, "TRAEFIK_API_URL": ""}
    worker = start_worker(env, ctx.work / "logs", "ws-worker", QUEUE, 1)
    ctx.services["ws-worker"] = worker
    try:
        wait_worker(worker)
        with boot_hosts(1, volumes=1) as pool:
            node = _node(pool.volume_hosts[0], pool.ssh_key_path)
            customer, user = _customer(count + singles)
            # A first workspace installs code-server on the node: not part of either figure.
            warm = _create(customer, user, "warm-up", node)
            _wait_settled([warm.pk], ctx, 600)
            # The single runs first, on a node with only the warm-up workspace, leaving
            # time for the batch after them.
            one_each = []
            for index in range(singles):
                seconds = (one_each[-1] if one_each else 15.0) + BATCH_SECONDS_EACH * count
                if not ctx.another(len(one_each), 2, seconds, "workspace single runs"):
                    break
                started = time.monotonic()
                single = _create(customer, user, f"single {index}", node)
                _wait_settled([single.pk], ctx, 300)
                one_each.append(time.monotonic() - started)
            started = time.monotonic()
            with transaction.atomic():
                ids = [_create(customer, user, f"batch {i}", node).pk for i in range(count)]
            _wait_settled(ids, ctx, 900)
            batched = time.monotonic() - started
            # No delete: the test host is discarded, and deletes are not what is measured.
    finally:
        worker.stop()
        ctx.services.pop("ws-worker", None)
    serial = stats.median(one_each) * count
    return {
        "figures": {"workspace_batch_speedup": (round(serial / batched, 2), "x")},
        "details": {
            "workspace_batch_speedup": {
                "method": f"{count} creates committed together -> one workspace_create.yml run, "
                f"until all running; vs median of sequential single-workspace runs x "
                f"{count} (SSH to one nspawn test host, btrfs quotas, real code-server)",
                "count": count,
                "batched_s": round(batched, 2),
                "single_s": stats.summary(one_each),
                "serial_estimate_s": round(serial, 1),
                "per_workspace_batched_s": round(batched / count, 3),
            }
        },
    }
