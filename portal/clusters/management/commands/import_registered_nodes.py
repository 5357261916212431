"""Import the old system's registered-nodes.json (keyed by MAC).

    manage.py import_registered_nodes registered-nodes.json [--cluster NAME]
        [--credential NAME] [--power-driver ipmi|redfish|test-host]

Every entry is checked before anything is written; a bad file names each problem on stderr,
exits 1 and imports nothing. Importing the same file again changes nothing.
"""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.clusters.actions.legacy import import_registered_nodes
from portal.clusters.models import Cluster
from portal.clusters.power import DRIVER_CHOICES
from portal.core.errors import PortalError
from portal.nodes.models import Credential


class Command(BaseCommand):
    help = "Import the old system's registered-nodes.json (idempotent; all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="registered-nodes.json")
        parser.add_argument("--cluster", help="attach new nodes to this cluster (by name)")
        parser.add_argument("--credential", help="new nodes log in with this credential")
        parser.add_argument(
            "--power-driver",
            default="ipmi",
            choices=[name for name, _ in DRIVER_CHOICES],
            help="new nodes' power driver (their BMC is set in the admin afterwards)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = self._read(options["file"])
        cluster = self._named(Cluster, options["cluster"], "cluster")
        credential = self._named(Credential, options["credential"], "credential")
        try:
            imported = import_registered_nodes(
                data, cluster=cluster, credential=credential, power_driver=options["power_driver"]
            )
        except PortalError as exc:
            raise CommandError(f"{options['file']}: nothing imported: {exc.message}") from None
        self.stdout.write(
            f"{len(imported.created)} created, {len(imported.updated)} updated, "
            f"{len(imported.unchanged)} unchanged."
        )

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except OSError as exc:
            raise CommandError(f"{path}: cannot read: {exc.strerror}") from None
        except (ValueError, RecursionError) as exc:
            raise CommandError(f"{path}: not JSON: {exc}") from None

    def _named(self, model: Any, name: str | None, what: str) -> Any:
        if name is None:
            return None
        found = model.objects.filter(name=name).first()
        if found is None:
            raise CommandError(f"No {what} named {name!r}.")
        return found
