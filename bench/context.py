"""What every figure gets: the running stack, its fixtures and the time left."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Api
from bench.procs import Service
from bench.stack import Fixtures

TERMINAL_WAIT = 180.0  # no single bench job may take longer than this


class OutOfTime(RuntimeError):
    pass


@dataclass
class Context:
    stack: str
    env: dict
    work: Path
    fixtures: Fixtures
    port: int
    deadline: float  # time.monotonic() by which this suite must be done
    services: dict[str, Service] = field(default_factory=dict)
    quick: bool = False

    def api(self) -> Api:
        return Api(self.port, self.fixtures.token)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def require(self, seconds: float, what: str) -> None:
        if self.left() < seconds:
            raise OutOfTime(f"{what}: {self.left():.0f}s left, {seconds:.0f}s needed")


def wait_job(job_id: int, timeout: float = TERMINAL_WAIT, poll: float = 0.05):
    """Poll the database until the job is terminal; returns the Job row."""
    from portal.jobs.choices import TERMINAL
    from portal.jobs.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status in TERMINAL:
            return Job.objects.get(pk=job_id)
        time.sleep(poll)
    raise TimeoutError(f"job {job_id} not finished after {timeout:.0f}s")


def check_complete(job, expected_events: int | None = None) -> None:
    """A measured job must have succeeded with every event stored."""
    from portal.jobs.choices import JobStatus

    if job.status != JobStatus.SUCCESSFUL:
        raise RuntimeError(f"job {job.pk} ended {job.status}: {job.reason}")
    stored = job.events.count()
    if stored != job.event_count or (expected_events and stored != expected_events):
        raise RuntimeError(f"job {job.pk}: {stored} events stored, job says {job.event_count}, "
                           f"expected {expected_events}")
