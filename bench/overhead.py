"""job_overhead_ratio: a portal Job vs plain ansible-playbook, side by side (A B B A ...).

Portal (B): ``POST /api/jobs/`` of tasks50.yml on the 20 local nodes; wall time from the
client sending the request to ``Job.finished_at`` (set only after every event is stored and
counted). Plain (A): ``ansible-playbook -i hosts.yml tasks50.yml`` in a data dir written by
the portal's own ``runner.prepare`` (same inventory file, same ansible.cfg with the same
forks, same environment variables the runner sets), stdout to a file; wall time of the
process. Pairs alternate their order (AB, BA, AB, ...) so drift hits both sides; the figure
is the median of the per-pair ratios B/A.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench import stats
from bench.context import check_complete, wait_job

PLAYBOOK = "tasks50.yml"
EXPECTED_EVENTS = 2053  # 1 + 1 + 50 task starts + 1000 x (start, ok) + stats


class Baseline:
    """Plain ansible-playbook with the portal's inventory, ansible.cfg and environment."""

    def __init__(self, nodes: list[str], playbook: str = PLAYBOOK):
        from portal.jobs import runner
        from portal.jobs.models import Job
        from portal.nodes.models import Node

        job = Job.objects.create(playbook=playbook, queue="bench-baseline", timeout=3600,
                                 idle_timeout=900, action="jobs.adhoc")
        job.nodes.set(Node.objects.filter(name__in=nodes))
        self.job = job
        self.data_dir = runner.prepare(job)
        stub = SimpleNamespace(handle=None)
        kwargs = runner._runner_kwargs(job, self.data_dir, stub, stub)
        self.env = {**os.environ, **kwargs["envvars"]}
        self.argv = [str(Path(sys.executable).parent / "ansible-playbook"),
                     "-i", kwargs["inventory"], kwargs["playbook"]]
        self.log = self.data_dir / "plain.log"

    def run(self) -> float:
        started = time.time()
        with self.log.open("w") as out:
            rc = subprocess.run(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                timeout=300, check=False).returncode
        elapsed = time.time() - started
        if rc != 0:
            raise RuntimeError(f"plain ansible-playbook rc {rc}: {self.log.read_text()[-2000:]}")
        return elapsed

    def close(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.job.delete()


def run_portal(api, nodes: list[str], playbook: str = PLAYBOOK,
               expected: int | None = EXPECTED_EVENTS) -> tuple[float, object]:
    job, sent, _ = api.launch(playbook, nodes)
    row = wait_job(job["id"])
    check_complete(row, expected)
    return row.finished_at.timestamp() - sent, row


def measure(ctx, pairs: int = 5, label: str = "job_overhead_ratio") -> dict:
    api = ctx.api()
    nodes = ctx.fixtures.heavy_nodes
    baseline = Baseline(nodes)
    plain, portal, ratios, phases = [], [], [], []
    try:
        # Warm-up (not measured): the worker's first job imports ansible-runner, the first
        # ansible-playbook run fills the OS page cache.
        ctx.require(60, label)
        baseline.run()
        run_portal(api, nodes)
        pair_seconds = 0.0
        for i in range(pairs):
            ctx.require(max(30.0, 1.3 * pair_seconds), label)
            started = time.monotonic()
            if i % 2 == 0:
                a = baseline.run()
                b, job = run_portal(api, nodes)
            else:
                b, job = run_portal(api, nodes)
                a = baseline.run()
            pair_seconds = time.monotonic() - started
            plain.append(a)
            portal.append(b)
            ratios.append(b / a)
            phases.append(_phases(job, b))
    finally:
        baseline.close()
        api.close()
    return {
        "figures": {label: (round(stats.median(ratios), 3), "x")},
        "details": {label: {
            "method": "median of per-pair (portal job wall / plain ansible-playbook wall), "
                      "pairs alternate AB/BA",
            "stack": ctx.stack, "pairs": len(ratios), "hosts": len(nodes), "tasks": 50,
            "ratios": [round(r, 3) for r in ratios],
            "plain_seconds": stats.summary(plain), "portal_seconds": stats.summary(portal),
            "portal_phases_median_seconds": {
                key: stats.rounded(stats.median([p[key] for p in phases]))
                for key in (phases[0] if phases else {})},
        }},
    }


def _phases(job, total: float) -> dict:
    """Where a portal job's wall time went (server timestamps)."""
    created = job.created_at.timestamp()
    return {
        "request_to_created": total - (job.finished_at.timestamp() - created),
        "created_to_started": job.started_at.timestamp() - created,
        "started_to_finished": job.finished_at.timestamp() - job.started_at.timestamp(),
    }
