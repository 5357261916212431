"""Run a playbook exactly as the portal does: recorded as a Job, output streamed here.

    manage.py runplaybook ping.yml --limit 'web*' -e '{"x": 1}' -e y=2

By default the job runs in this process (no worker needed); ``--queue`` hands it to the
workers instead and follows it.
"""

import json
import sys
import threading
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.core.errors import PortalError
from portal.jobs import actions
from portal.jobs.choices import TERMINAL, JobStatus
from portal.jobs.models import Job, JobEvent


def parse_extra_vars(values: list[str]) -> dict:
    merged: dict = {}
    for value in values:
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise CommandError(f"-e {value!r}: not valid JSON ({exc.msg})") from None
            if not isinstance(parsed, dict):
                raise CommandError(f"-e {value!r}: extra vars must be a mapping")
            merged.update(parsed)
        elif "=" in value:
            for pair in value.split():
                name, _, item = pair.partition("=")
                merged[name] = item
        else:
            raise CommandError(f"-e {value!r}: use NAME=VALUE or a JSON object")
    return merged


class Command(BaseCommand):
    help = "Run a playbook from playbooks/ against the portal's nodes, recorded as a Job."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("playbook", help="e.g. ping.yml")
        parser.add_argument("--limit", "-l", default="", help="node or group names, globs")
        parser.add_argument(
            "--extra-vars",
            "-e",
            action="append",
            default=[],
            help="NAME=VALUE or a JSON object; repeatable",
        )
        parser.add_argument("--check", action="store_true", help="run in check mode")
        parser.add_argument("--timeout", type=int, help="job timeout in seconds")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="dispatch to the Celery workers instead of running here",
        )

    def handle(
        self,
        *args: Any,
        playbook: str,
        limit: str,
        extra_vars: list[str],
        check: bool,
        timeout: int | None,
        queue: bool,
        **options: Any,
    ) -> None:
        try:
            job = actions.launch(
                playbook=playbook,
                limit=limit,
                check_mode=check,
                extra_vars=parse_extra_vars(extra_vars),
                timeout=timeout,
                enqueue=queue,
            )
        except PortalError as exc:
            raise CommandError(f"{exc.field or 'error'}: {exc.message}") from None
        self.stderr.write(f"job {job.pk}: {playbook} on {job.nodes.count()} node(s)")
        job = self._follow(job) if queue else self._run_here(job)
        self._report(job)

    def _run_here(self, job: Job) -> Job:
        done = threading.Event()
        follower = threading.Thread(target=self._print_events, args=(job.pk, done), daemon=True)
        follower.start()
        actions.execute(job.pk, job.signature, worker="manage.py")
        done.set()
        follower.join()
        job.refresh_from_db()
        return job

    def _follow(self, job: Job) -> Job:
        done = threading.Event()
        follower = threading.Thread(target=self._print_events, args=(job.pk, done), daemon=True)
        follower.start()
        try:
            while job.status not in TERMINAL:
                time.sleep(0.2)
                job.refresh_from_db()
        except KeyboardInterrupt:
            actions.cancel(job)
            self.stderr.write("cancel requested")
            raise
        finally:
            done.set()
            follower.join()
        return job

    def _print_events(self, job_id: int, done: threading.Event) -> None:
        from django.db import connection

        after, seen_hosts = 0, 0
        try:
            while True:
                finished = done.is_set()
                rows = (
                    JobEvent.objects.filter(job_id=job_id, counter__gt=after)
                    .order_by("counter")
                    .values_list("counter", "stdout", "event")
                )
                for counter, stdout, event in rows:
                    after = counter
                    if stdout:
                        self.stdout.write(stdout)
                    if event.startswith("runner_on_") and event != "runner_on_start":
                        seen_hosts += 1
                        self._progress(after, seen_hosts)
                if finished:
                    return
                time.sleep(0.1)
        finally:
            connection.close()

    def _progress(self, counter: int, results: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r[{counter} events, {results} task results]")
            sys.stderr.flush()

    def _report(self, job: Job) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        summary = f"job {job.pk} {job.status} rc={job.rc} events={job.event_count}"
        if job.reason:
            summary += f" ({job.reason})"
        if job.status != JobStatus.SUCCESSFUL:
            raise CommandError(summary, returncode=2 if job.status == JobStatus.FAILED else 1)
        self.stderr.write(self.style.SUCCESS(summary))
