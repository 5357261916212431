"""Clusters' test helpers: a cluster with nodes, a run without the broker, the playbooks
the job engine needs to resolve (the real ones when present), jobs' reports."""

import itertools
import shutil
from unittest import mock

import pytest
from django.utils import timezone

from portal.clusters.models import Cluster, ClusterNode, NodeReprovision
from portal.jobs.models import Job, JobEvent
from portal.nodes.choices import NodePurpose
from tests.factories import NodeFactory

PLAYBOOKS = ("cluster_node_ready.yml", "cluster_form.yml")
_macs = itertools.count(1)


def make_cluster(name="pve", count=3, driver="test-host", **fields):
    cluster = Cluster.objects.create(name=name, **fields)
    for n in range(1, count + 1):
        make_node(cluster, f"{name}-{n}", n, driver=driver)
    return cluster


def make_node(cluster, name, n, driver="test-host", **fields):
    node = NodeFactory(name=name, purpose=NodePurpose.PROXMOX_NODE, address=f"10.9.0.{n}")
    return ClusterNode.objects.create(
        node=node,
        cluster=cluster,
        mac="52:54:00:00:{:02x}:{:02x}".format(*divmod(next(_macs), 256)),
        power_driver=driver,
        bmc_address=f"10.8.0.{n}",
        bmc_username="admin",
        bmc_password="bmc-secret-pw",
        power_options={"command": ["/bin/true"]} if driver == "test-host" else {},
        **fields,
    )


@pytest.fixture(autouse=True)
def playbooks(settings, tmp_path):
    """The engine resolves playbook names before launching: the repo's playbooks, plus a
    placeholder for those another part of #16 has not committed yet (never run here)."""
    if all((settings.PLAYBOOKS_DIR / name).is_file() for name in PLAYBOOKS):
        return
    root = tmp_path / "playbooks"
    root.mkdir()
    for existing in settings.PLAYBOOKS_DIR.glob("*.y*ml"):
        shutil.copy(existing, root / existing.name)
    for name in PLAYBOOKS:
        if not (root / name).exists():
            (root / name).write_text("- hosts: all\n  gather_facts: false\n  tasks: []\n")
    settings.PLAYBOOKS_DIR = root


def report(job, key, per_host, status="successful"):
    """Pretend the job ran: its stats event carries the role's per-host report."""
    Job.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now())
    JobEvent.objects.create(
        job=job,
        counter=1,
        event="playbook_on_stats",
        created=timezone.now(),
        event_data={"artifact_data": {key: per_host}},
    )
    job.refresh_from_db()


def node_runs(run):
    return {nr.cluster_node.node.name: nr for nr in NodeReprovision.objects.filter(run=run)}


def start(cluster, user=None, nodes="all", timeout=None, reimage=True):
    """A run of ``cluster`` with its reimages done (the driver stubbed): nodes rebooting."""
    from portal.clusters import actions
    from portal.clusters.actions import power

    with mock.patch("portal.clusters.actions.power.get_driver"):
        run = actions.start_run(user, cluster, nodes, timeout)
        if reimage:
            for node_run in run.node_runs.all():
                power.do_reimage(node_run.pk)
    run.refresh_from_db()
    return run
