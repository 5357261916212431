"""Sample fleet data for development (portal/fleet/actions/seed.py):

    manage.py seed_fleet

Two customers of each tier with VMs, their heartbeats and metric history, the tier costs and
an update. Running it again adds only what is missing. The same as
``POST /api/seed-test-data`` (which exists only with DEBUG on).
"""

from typing import Any

from django.core.management.base import BaseCommand

from portal.fleet.actions.seed import do_seed_fleet


class Command(BaseCommand):
    help = "Make the fleet's sample data (idempotent: adds only what is missing)."

    def handle(self, *args: Any, **options: Any) -> None:
        made = do_seed_fleet()
        summary = ", ".join(f"{count} {kind}" for kind, count in made.items())
        self.stdout.write(f"seed_fleet: made {summary}")
