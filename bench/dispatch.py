"""dispatch_latency_p95: launch API call returned -> runner starting (Job.started_at).

One-task playbook on one local node, served by its own worker (concurrency 2). Each launch
waits for the job to start and for a free worker process (at most one other job still
running) before the next, so the figure is the dispatch path, not a queue of jobs waiting
for a process. Latency = ``started_at`` (set by the worker's claim, right before the runner
starts) - the wall time the client got the 201 back; same machine, same wall clock. The
launches are split in rounds; the figure is the median of the rounds' p95. Its floor, the
broker's own round trip (publish -> consume of a no-op message, bench/broker.py), is a
detail.
"""

import time

from bench import stats
from bench.broker import round_trip
from bench.context import wait_job

PLAYBOOK = "one.yml"


def _wait_started(ctx, job_id: int, timeout: float = 20.0):
    from portal.jobs.models import Job

    deadline = min(time.monotonic() + timeout, ctx.deadline)
    while time.monotonic() < deadline:
        ctx.check_workers()
        row = (
            Job.objects.filter(pk=job_id)
            .values_list("started_at", "created_at", "dispatched_at")
            .first()
        )
        if row and row[0] is not None:
            return row
        time.sleep(0.01)
    raise TimeoutError(f"job {job_id} not started after {timeout:.0f}s")


def _wait_free_slot(ctx, queue: str, concurrency: int, timeout: float = 60.0) -> None:
    from portal.jobs.choices import ACTIVE
    from portal.jobs.models import Job

    deadline = min(time.monotonic() + timeout, ctx.deadline)
    while time.monotonic() < deadline:
        ctx.check_workers()
        if Job.objects.filter(queue=queue, status__in=list(ACTIVE)).count() < concurrency:
            return
        time.sleep(0.01)
    raise TimeoutError(f"no free worker process on {queue} after {timeout:.0f}s")


def measure(
    ctx,
    launches: int = 200,
    rounds: int = 4,
    concurrency: int = 2,
    label: str = "dispatch_latency_p95",
    minimum: int = 1,
) -> dict:
    api = ctx.api()
    node, queue = ctx.fixtures.dispatch_node, ctx.fixtures.dispatch_queue
    per_round = max(1, launches // rounds)
    from_return, from_send, publish = [], [], []
    round_p95 = []
    last_job = None
    try:
        # Warm-up (not measured): one job per pool process at once; each process's first
        # job imports ansible-runner.
        warm = [api.launch(PLAYBOOK, [node])[0]["id"] for _ in range(concurrency)]
        for job_id in warm:
            wait_job(job_id, timeout=60)
        round_seconds = 30.0  # until the first round says how long one takes here
        for _ in range(rounds):
            if not ctx.another(len(round_p95), minimum, round_seconds, label):
                break
            begun = time.monotonic()
            this_round = []
            for _ in range(per_round):
                ctx.require(15, label)
                _wait_free_slot(ctx, queue, concurrency)
                job, sent, returned = api.launch(PLAYBOOK, [node])
                started_at, created_at, dispatched_at = _wait_started(ctx, job["id"])
                started = started_at.timestamp()
                this_round.append((started - returned) * 1000)
                from_send.append((started - sent) * 1000)
                if dispatched_at:
                    publish.append((dispatched_at.timestamp() - created_at.timestamp()) * 1000)
                last_job = job["id"]
            from_return.extend(this_round)
            round_p95.append(stats.percentile(this_round, 95))
            round_seconds = time.monotonic() - begun
        if last_job:
            wait_job(last_job, timeout=60)
    finally:
        api.close()
    return {
        "figures": {label: (round(stats.median(round_p95), 1), "ms")},
        "details": {
            label: {
                "method": "started_at - client time the launch returned; median of per-round p95",
                "stack": ctx.stack,
                "launches": len(from_return),
                "rounds": len(round_p95),
                "round_p95_ms": [round(v, 1) for v in round_p95],
                "all_from_return_ms": stats.summary(from_return),
                "all_from_request_sent_ms": stats.summary(from_send),
                "created_to_dispatched_ms": stats.summary(publish),
                "worker_concurrency": concurrency,
                "floor_broker_round_trip": round_trip(),
            }
        },
    }
