"""``manage.py prune_jobs [--dry-run]``: apply the jobs' retention now (jobs/retention.py)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.jobs import retention


class Command(BaseCommand):
    help = (
        "Delete events of jobs ended more than JOB_EVENTS_RETENTION_DAYS ago and jobs ended "
        "more than JOB_RETENTION_DAYS ago, in batches (the beat task jobs.prune does it hourly)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would go, delete nothing"
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        rules = retention.plan()
        self.stdout.write(
            f"events of jobs ended before: {rules.events_before or 'kept forever'}; "
            f"jobs ended before: {rules.jobs_before or 'kept forever'}"
        )
        if dry_run:
            counts = retention.would_prune()
            self.stdout.write(
                f"would delete {counts['jobs']} jobs, {counts['events']} events "
                f"(and the events of {counts['event_jobs']} jobs whose summary stays)"
            )
            return
        done = retention.prune()
        self.stdout.write(
            f"deleted {done['jobs']} jobs, {done['events']} events "
            f"(the events of {done['event_jobs']} jobs whose summary stays); "
            "a run stops after JOB_PRUNE_MAX_BATCHES batches: run again for the rest"
        )
