"""Reprovision Proxmox nodes and watch the run until the cluster is formed.

    manage.py reprovision NODE… | --all [--cluster NAME] [--timeout MINUTES]
    manage.py reprovision --watch RUN
    manage.py reprovision --cancel RUN
        [--progress-every SECONDS] [--user USERNAME]

NODE is a node's name or MAC. Each transition is printed as it is recorded, a summary every
``--progress-every`` seconds (300); the exit code is the outcome: 0 clustered, 1 error (or
canceled), 2 timeout. Ctrl-C stops watching (the run goes on) and says how to resume.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.clusters import actions
from portal.clusters.models import Cluster, ClusterNode, ReprovisionRun
from portal.clusters.naming import normalise_mac
from portal.clusters.watch import Watcher
from portal.core.errors import PortalError

INTERRUPTED = 130


class Command(BaseCommand):
    help = "Reprovision Proxmox nodes (or all of a cluster), then watch until clustered."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("nodes", nargs="*", metavar="NODE", help="node names or MACs")
        parser.add_argument("--all", action="store_true", help="every node of the cluster")
        parser.add_argument("--cluster", help="the cluster (needed when several exist)")
        parser.add_argument("--timeout", type=int, help="the run's deadline in minutes (60)")
        parser.add_argument("--watch", type=int, metavar="RUN", help="watch a run")
        parser.add_argument("--cancel", type=int, metavar="RUN", help="cancel a run")
        parser.add_argument(
            "--progress-every",
            type=float,
            default=300.0,
            metavar="SECONDS",
            help="a summary this often while watching (300)",
        )
        parser.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
        parser.add_argument("--user", help="record the run as started by this user")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["cancel"] is not None:
                self.cancel(options["cancel"], options)
                return
            run_id = options["watch"] if options["watch"] is not None else self.start(options)
        except PortalError as exc:
            raise CommandError(exc.message) from None
        self.follow(run_id, options)

    # --- start and cancel ------------------------------------------------------------------

    def start(self, options: dict[str, Any]) -> int:
        if options["all"] == bool(options["nodes"]):
            raise CommandError("Name the nodes to reprovision, or give --all (not both).")
        user = self.user(options["user"])
        if options["all"]:
            cluster = self.cluster(options["cluster"])
            run = actions.start_run(user, cluster, actions.ALL, options["timeout"])
        else:
            nodes = [self.node(name) for name in options["nodes"]]
            cluster = self.cluster(options["cluster"], nodes)
            run = actions.start_run(user, cluster, nodes, options["timeout"])
        names = ", ".join(sorted(n.node.name for n in run.nodes.select_related("node")))
        self.stdout.write(
            f"run {run.pk} started on cluster {cluster.name}: {names} "
            f"(deadline {run.timeout_minutes} minutes)"
        )
        return run.pk

    def cancel(self, run_id: int, options: dict[str, Any]) -> None:
        run = ReprovisionRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No run {run_id}.")
        actions.cancel_run(run, by=self.user(options["user"]))
        self.stdout.write(f"run {run.pk} canceled")

    # --- watch ---------------------------------------------------------------------------

    def follow(self, run_id: int, options: dict[str, Any]) -> None:
        if not ReprovisionRun.objects.filter(pk=run_id).exists():
            raise CommandError(f"No run {run_id}.")
        watcher = Watcher(
            run_id=run_id,
            write=self.stdout.write,
            poll_seconds=max(options["poll"], 0.1),
            progress_every=max(options["progress_every"], 1.0),
        )
        try:
            code = watcher.watch()
        except KeyboardInterrupt:
            self.stdout.write(
                f"\nStopped watching; run {run_id} goes on. Resume with: "
                f"manage.py reprovision --watch {run_id}"
            )
            raise SystemExit(INTERRUPTED) from None
        if code:
            raise CommandError(f"run {run_id} did not cluster", returncode=code)

    # --- lookups -------------------------------------------------------------------------

    def node(self, name: str) -> ClusterNode:
        rows = ClusterNode.objects.select_related("node", "cluster")
        try:
            found = rows.filter(mac=normalise_mac(name)).first()
        except ValueError:
            found = rows.filter(node__name=name).first()
        if found is None:
            raise CommandError(f"No cluster node {name!r} (a node name or MAC).")
        return found

    def cluster(self, name: str | None, nodes: list[ClusterNode] | None = None) -> Cluster:
        if name is not None:
            cluster = Cluster.objects.filter(name=name).first()
            if cluster is None:
                raise CommandError(f"No cluster named {name!r}.")
            return cluster
        if nodes:
            clusters = {node.cluster for node in nodes}
            if len(clusters) != 1 or None in clusters:
                raise CommandError("The nodes are not all in one cluster: give --cluster.")
            return clusters.pop()  # type: ignore[return-value]
        clusters_all = list(Cluster.objects.all()[:2])
        if len(clusters_all) != 1:
            raise CommandError("Give --cluster (there is not exactly one cluster).")
        return clusters_all[0]

    def user(self, username: str | None) -> Any:
        if username is None:
            return None
        found = get_user_model().objects.filter(username=username).first()
        if found is None:
            raise CommandError(f"No user {username!r}.")
        return found
