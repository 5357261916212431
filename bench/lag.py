"""event_lag_p95 and worker_rss_mb: jobs watched live through the SSE stream.

event_lag_p95: a client opens ``GET /api/jobs/{id}/stream/`` as soon as the launch returns
and reads it to its ``end`` frame; each event's lag = the wall time its frame arrived - its
``created`` field (set by Ansible's callback when the event happened). Every event of the
job must arrive. The figure is the median over runs of each run's p95, on ``trickle.yml``
(events spread over a few seconds on 4 local hosts); the same is reported for the 50 x 20
job (a burst of ~2,000 events in ~12 s on 2 cores) as ``event_lag_p95_50x20``.

worker_rss_mb: during the 50 x 20 runs, the worker's process tree is sampled every 100 ms
from /proc; the figure is the peak of the summed RSS of the Celery worker processes (main
process + the pool process running the job). The ansible-playbook tree it spawns (the
playbook process and its 20 forks) is reported next to it as a detail. The broker's own
round trip (bench/broker.py) is in event_lag_p95's details as its floor.
"""

import threading
import time

from bench import stats
from bench.broker import round_trip
from bench.client import read_stream
from bench.context import OutOfTime, check_complete, wait_job
from bench.procs import cmdline, descendants, rss_kb


class RssSampler(threading.Thread):
    def __init__(self, root: int, every: float = 0.1):
        super().__init__(daemon=True, name="rss-sampler")
        self.root, self.every = root, every
        self.stop_event = threading.Event()
        self.peak_worker_kb = self.peak_pool_kb = self.peak_ansible_kb = self.peak_total_kb = 0
        self.samples = 0

    def run(self):
        while not self.stop_event.wait(self.every):
            worker = pool = ansible = 0
            for pid in [self.root, *descendants(self.root)]:
                kb = rss_kb(pid)
                if "celery" in cmdline(pid):
                    worker += kb
                    if pid != self.root:
                        pool = max(pool, kb)
                else:
                    ansible += kb
            self.samples += 1
            self.peak_worker_kb = max(self.peak_worker_kb, worker)
            self.peak_pool_kb = max(self.peak_pool_kb, pool)
            self.peak_ansible_kb = max(self.peak_ansible_kb, ansible)
            self.peak_total_kb = max(self.peak_total_kb, worker + ansible)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=5)


def watch_job(
    ctx, playbook: str, nodes: list[str], expected: int | None = None, rss_root: int | None = None
) -> dict:
    api = ctx.api()
    sampler = RssSampler(rss_root) if rss_root else None
    try:
        if sampler:
            sampler.start()
        job, _, _ = api.launch(playbook, nodes)
        stream = read_stream(
            ctx.port, ctx.fixtures.token, job["id"], time.time() + max(1.0, min(120.0, ctx.left()))
        )
        row = wait_job(job["id"])
    finally:
        if sampler:
            sampler.stop()
        api.close()
    check_complete(row, expected)
    arrivals = stream["arrivals"]
    if len(arrivals) != row.event_count or stream["end"] != row.status:
        raise RuntimeError(
            f"stream of job {row.pk}: {len(arrivals)} of {row.event_count} "
            f"events, end {stream['end']!r}"
        )
    lags = [(arrived - created) * 1000 for _, created, arrived in arrivals]
    return {"lags": lags, "events": len(lags), "job": row, "sampler": sampler}


def measure(ctx, light_runs: int = 3, heavy_runs: int = 2, light_minimum: int = 2) -> dict:
    """``heavy_runs=0`` (--quick): the 50 x 20 runs, and with them event_lag_p95_50x20 and
    worker_rss_mb, are left out."""
    light_nodes = ctx.fixtures.heavy_nodes[:4]
    heavy_nodes = ctx.fixtures.heavy_nodes
    worker_pid = ctx.services["worker"].pid
    light, heavy, stored = [], [], []
    light_events = heavy_events = 0
    worker_kb, pool_kb, ansible_kb, total_kb = [], [], [], []
    try:
        for i in range(max(light_runs, heavy_runs)):
            if i < heavy_runs and ctx.another(len(heavy), 1, 40, "event lag 50x20 / worker rss"):
                run = watch_job(ctx, "tasks50.yml", heavy_nodes, expected=2053, rss_root=worker_pid)
                heavy.append(stats.percentile(run["lags"], 95))
                heavy_events = run["events"]
                sampler = run["sampler"]
                worker_kb.append(sampler.peak_worker_kb)
                pool_kb.append(sampler.peak_pool_kb)
                ansible_kb.append(sampler.peak_ansible_kb)
                total_kb.append(sampler.peak_total_kb)
            if i < light_runs and ctx.another(len(light), light_minimum, 20, "event lag"):
                run = watch_job(ctx, "trickle.yml", light_nodes)
                light.append(stats.percentile(run["lags"], 95))
                stored.append(run["job"].event_lag_p95_ms)
                light_events = run["events"]
    except OutOfTime:
        if not light:
            raise
    figures, details = {}, {}
    if light:
        figures["event_lag_p95"] = (round(stats.median(light), 1), "ms")
        details["event_lag_p95"] = {
            "method": "SSE frame arrival - event created; median of per-run p95",
            "playbook": "trickle.yml",
            "hosts": len(light_nodes),
            "runs": len(light),
            "events_per_run": light_events,
            "run_p95_ms": [round(v, 1) for v in light],
            "engine_stored_lag_p95_ms": stored,
            "floor_broker_round_trip": round_trip(),
        }
    if heavy:
        figures["event_lag_p95_50x20"] = (round(stats.median(heavy), 1), "ms")
        details["event_lag_p95_50x20"] = {
            "method": "as event_lag_p95, on the 50 x 20 job",
            "runs": len(heavy),
            "events_per_run": heavy_events,
            "run_p95_ms": [round(v, 1) for v in heavy],
        }
        figures["worker_rss_mb"] = (round(stats.median(worker_kb) / 1024, 1), "MB")
        details["worker_rss_mb"] = {
            "method": "peak summed VmRSS of the Celery worker processes (main + pool) during "
            "the 50 x 20 job, sampled every 100 ms; median over runs",
            "runs": len(worker_kb),
            "worker_concurrency": 1,
            "peak_worker_mb": [round(v / 1024, 1) for v in worker_kb],
            "peak_pool_process_mb": [round(v / 1024, 1) for v in pool_kb],
            "peak_ansible_tree_mb": [round(v / 1024, 1) for v in ansible_kb],
            "peak_whole_tree_mb": [round(v / 1024, 1) for v in total_kb],
        }
    return {"figures": figures, "details": details}
