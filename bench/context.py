"""What every figure gets: the running stack, its fixtures and the time left."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import stats
from bench.client import Api
from bench.procs import Service
from bench.stack import Fixtures
from bench.targets import target

TERMINAL_WAIT = 180.0  # no single bench job may take longer than this


class OutOfTime(RuntimeError):
    pass


class WorkerDied(RuntimeError):
    pass


_active: "Context | None" = None  # the suite's context: waits respect its deadline


@dataclass
class Context:
    stack: str
    env: dict
    work: Path
    fixtures: Fixtures
    port: int
    deadline: float  # time.monotonic() by which this suite must be done
    services: dict[str, Service] = field(default_factory=dict)
    figure_end: float = float("inf")  # end of the current figure's share (bench.suite)
    quick: bool = False
    incidents: list[str] = field(default_factory=list)

    def __post_init__(self):
        global _active
        _active = self

    def api(self) -> Api:
        return Api(self.port, self.fixtures.token)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def require(self, seconds: float, what: str) -> None:
        if self.left() < seconds:
            raise OutOfTime(f"{what}: {self.left():.0f}s left, {seconds:.0f}s needed")

    def another(self, done: int, minimum: int, seconds: float, what: str) -> bool:
        """Whether to measure one more repetition taking about ``seconds``: the first
        ``minimum`` are required (OutOfTime past the suite's deadline); later ones only fit
        in the figure's share, so a slow machine gets fewer repetitions of every figure
        instead of none of the last ones."""
        if done < minimum:
            self.require(seconds, what)
            return True
        return self.fits(seconds)

    def decided(self, figure: str, ratios: list[float], minimum: int = 0) -> bool:
        """Whether a figure measured in AB/BA pairs has its verdict, after a whole couple
        and its minimum: its median's 90 % interval lies wholly on one side of its target
        (bench.stats.decided). Until then it takes more pairs while its share lasts; once
        decided, it leaves the time to the figures after it (the engine's, last)."""
        if len(ratios) < minimum or len(ratios) % 2:
            return False
        return stats.decided(ratios, *target(figure))

    def verdict_spread(self, figure: str, ratios: list[float]) -> dict:
        """For the details: the median's 90 % interval, and whether it lies on one side of
        the target (if not, the verdict is within the pairs' spread: more pairs, or a less
        noisy machine), whatever the count of pairs the run ended with."""
        interval = stats.median_interval(ratios)
        return {
            "median_interval_90": [round(v, 3) for v in interval] if interval else None,
            "decided": stats.decided(ratios, *target(figure)),
        }

    def fits(self, seconds: float) -> bool:
        """``seconds`` of optional work fit in the figure's share and the suite's time."""
        return self.left() >= seconds and time.monotonic() + seconds <= self.figure_end

    def check_workers(self) -> None:
        for name, service in self.services.items():
            if name != "web" and not service.alive():
                tail = " | ".join(service.log_tail(4000).strip().splitlines()[-3:])
                raise WorkerDied(f"{name} exited (rc {service.process.returncode}): {tail}")

    def restart_dead_workers(self, why: str) -> None:
        """A worker that died is replaced (same command, new log), and the incident kept."""
        from bench.stack import wait_worker

        self.incidents.append(why)
        for name, service in list(self.services.items()):
            if name == "web" or service.alive():
                continue
            service.stop(grace=1)
            count = sum(1 for text in self.incidents if name in text)
            fresh = Service(f"{name}-restart{count}", service.argv, service.env, service.log_dir)
            self.services[name] = fresh
            wait_worker(fresh)


def wait_job(job_id: int, timeout: float = TERMINAL_WAIT, poll: float = 0.05):
    """Poll the database until the job is terminal; returns the Job row. Never waits past
    the suite's deadline, and gives up at once if one of its workers has died."""
    from portal.jobs.choices import TERMINAL
    from portal.jobs.models import Job

    ctx = _active
    deadline = time.monotonic() + timeout
    if ctx is not None:
        deadline = min(deadline, ctx.deadline)
    while time.monotonic() < deadline:
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if status in TERMINAL:
            return Job.objects.get(pk=job_id)
        if ctx is not None:
            ctx.check_workers()
        time.sleep(poll)
    if ctx is not None and ctx.left() <= 0:
        raise OutOfTime(f"job {job_id} not finished when the suite's time ran out")
    raise TimeoutError(f"job {job_id} not finished after {timeout:.0f}s")


def check_complete(job, expected_events: int | None = None) -> None:
    """A measured job must have succeeded with every event stored."""
    from portal.jobs.choices import JobStatus

    if job.status != JobStatus.SUCCESSFUL:
        raise RuntimeError(f"job {job.pk} ended {job.status}: {job.reason}")
    stored = job.events.count()
    if stored != job.event_count or (expected_events and stored != expected_events):
        raise RuntimeError(
            f"job {job.pk}: {stored} events stored, job says {job.event_count}, "
            f"expected {expected_events}"
        )
