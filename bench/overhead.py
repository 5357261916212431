"""job_overhead_ratio: a portal Job vs plain ansible-playbook, side by side (A B B A ...).

Portal (B): ``POST /api/jobs/`` of tasks50.yml on the 20 local nodes; wall time from the
client sending the request to ``Job.finished_at`` (set only after every event is stored and
counted). Plain (A): ``ansible-playbook -i hosts.yml tasks50.yml`` in a data dir written by
the portal's own ``runner.prepare`` (same inventory file, same ansible.cfg with the same
forks, same environment variables the runner sets), stdout to a file; wall time of the
process. Pairs alternate their order (AB, BA, AB, ...) so drift hits both sides; the figure
is the median of the per-pair ratios B/A.
"""

import functools
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench import stats
from bench.context import OutOfTime, WorkerDied, check_complete, wait_job
from bench.paths import PLAYBOOKS
from bench.procs import cmdline, descendants, machine_busy

PLAYBOOK = "tasks50.yml"
EXPECTED_EVENTS = 2053  # 1 + 1 + 50 task starts + 1000 x (start, ok) + stats


class Baseline:
    """Plain ansible-playbook with the portal's inventory, ansible.cfg and environment."""

    def __init__(self, nodes: list[str], playbook: str = PLAYBOOK, extra_vars=None):
        from portal.core.childenv import child_environment
        from portal.jobs import runner
        from portal.jobs.models import Job
        from portal.nodes.models import Node

        job = Job.objects.create(
            playbook=playbook,
            queue="bench-baseline",
            timeout=3600,
            idle_timeout=900,
            action="jobs.adhoc",
            extra_vars=extra_vars or {},
        )
        job.nodes.set(Node.objects.filter(name__in=nodes))
        self.job = job
        self.data_dir = runner.prepare(job)
        stub = SimpleNamespace(handle=None)
        kwargs = runner._runner_kwargs(job, self.data_dir, stub, stub)
        # Everything the runner sets but its event transport: plain Ansible, default output.
        transport = ("ANSIBLE_CALLBACK_PLUGINS", "PORTAL_EVENT_FIFO")
        self.env = child_environment(
            {k: v for k, v in kwargs["envvars"].items() if k not in transport}
        )
        variables = self.data_dir / "env" / "extravars"  # as ansible-runner passes them
        self.argv = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            kwargs["inventory"],
            *(["-e", f"@{variables}"] if variables.exists() else []),
            kwargs["playbook"],
        ]
        self.log = self.data_dir / "plain.log"

    def run(self, playbook: str | None = None) -> tuple[float, float]:
        """Wall seconds and CPU seconds (the process and every descendant it waited for)."""
        argv = self.argv if playbook is None else [*self.argv[:-1], str(PLAYBOOKS / playbook)]
        cpu_before = _children_cpu()
        started = time.time()
        with self.log.open("w") as out:
            rc = subprocess.run(
                argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=300, check=False
            ).returncode
        elapsed = time.time() - started
        if rc != 0:
            raise RuntimeError(f"plain ansible-playbook rc {rc}: {self.log.read_text()[-2000:]}")
        return elapsed, _children_cpu() - cpu_before

    def close(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.job.delete()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process plus its waited-for children (utime+stime+cutime+cstime)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / _TICK


def _worker_cpu(worker_pid: int) -> float:
    """The worker's main process and its pool processes; ansible-playbook and its forks are
    counted once the pool process has waited for them (the job is over)."""
    pids = [worker_pid] + [p for p in descendants(worker_pid) if "celery" in cmdline(p)]
    return sum(_tree_cpu(p) for p in pids)


def run_portal(
    api,
    nodes: list[str],
    playbook: str = PLAYBOOK,
    expected: int | None = EXPECTED_EVENTS,
    worker_pid: int | None = None,
) -> tuple[float, object, float | None]:
    """Wall seconds (request sent -> finished_at), the Job, the worker's CPU seconds."""
    cpu_before = _worker_cpu(worker_pid) if worker_pid else None
    job, sent, _ = api.launch(playbook, nodes)
    # finished_at is the server's timestamp: a slow poll costs no precision, only less load.
    row = wait_job(job["id"], poll=0.25)
    check_complete(row, expected)
    cpu = _worker_cpu(worker_pid) - cpu_before if worker_pid else None
    return row.finished_at.timestamp() - sent, row, cpu


def another_pair(ctx, i: int, ratios: list, minimum: int, pair_seconds: float, label: str):
    """Whether pair ``i`` runs. Past the minimum, an AB pair starts only if its BA fits too
    (with an odd count one order has a pair more, and which side runs second moves a pair's
    ratio), and none once the verdict is decided (bench.stats.decided): more pairs like
    these would most likely not change it, and the time is the other figures'."""
    if ctx.decided(label, ratios, minimum):
        return False
    couple = 2 if i % 2 == 0 and len(ratios) >= minimum else 1
    return ctx.another(len(ratios), minimum, (couple + 0.3) * pair_seconds, label)


def measure(ctx, pairs: int = 5, minimum: int = 2, label: str = "job_overhead_ratio") -> dict:
    """Up to ``pairs`` pairs, at least ``minimum``, as many as the figure's share allows."""
    api = ctx.api()
    nodes = ctx.fixtures.heavy_nodes
    worker_pid = ctx.services["worker"].pid
    baseline = Baseline(nodes)
    plain, portal, ratios, cpu_ratios, phases, per_pair = [], [], [], [], [], []
    try:
        # Warm-up (not measured): the worker's first job imports ansible-runner, the first
        # ansible-playbook run fills the OS page cache.
        ctx.require(40, label)
        baseline.run("one.yml")
        run_portal(api, nodes[:1], "one.yml", expected=None)
        pair_seconds = 30.0
        for i in range(pairs):
            if not another_pair(ctx, i, ratios, minimum, pair_seconds, label):
                break
            started = time.monotonic()
            try:
                portal_run = functools.partial(run_portal, api, nodes, worker_pid=worker_pid)
                if i % 2 == 0:
                    (a, a_cpu), a_busy = _with_machine(baseline.run)
                    (b, job, b_cpu), b_busy = _with_machine(portal_run)
                else:
                    (b, job, b_cpu), b_busy = _with_machine(portal_run)
                    (a, a_cpu), a_busy = _with_machine(baseline.run)
            except WorkerDied as exc:
                # Recorded in results.json ("incidents"); this pair is dropped.
                ctx.restart_dead_workers(f"{label} pair {i + 1}: {exc}")
                worker_pid = ctx.services["worker"].pid
                continue
            pair_seconds = time.monotonic() - started
            plain.append(a)
            portal.append(b)
            ratios.append(b / a)
            cpu_ratios.append(b_cpu / a_cpu if a_cpu else None)
            per_pair.append([round(v, 2) for v in (a, b, a_cpu, b_cpu or 0, a_busy, b_busy)])
            phases.append(_phases(job, b))
    except OutOfTime:
        if len(ratios) < minimum:
            raise
    finally:
        baseline.close()
        api.close()
    return {
        "figures": {label: (round(stats.median(ratios), 3), "x")},
        "details": {
            label: {
                "method": "median of per-pair (portal job wall / plain ansible-playbook wall), "
                "pairs alternate AB/BA",
                "stack": ctx.stack,
                "pairs": len(ratios),
                **ctx.verdict_spread(label, ratios),
                "hosts": len(nodes),
                "tasks": 50,
                "ratios": [round(r, 3) for r in ratios],
                "plain_seconds": stats.summary(plain),
                "portal_seconds": stats.summary(portal),
                "cpu_ratio_median": stats.rounded(stats.median(cpu_ratios)),
                "cpu_ratios": [stats.rounded(r) for r in cpu_ratios],
                "cpu_ratio_method": "CPU seconds of the worker (main + pool process + the "
                "ansible-playbook tree it ran) / CPU seconds of plain "
                "ansible-playbook and its forks; less sensitive to other load",
                "per_pair": per_pair,
                "per_pair_fields": "plain and portal wall seconds, their CPU seconds (the "
                "cpu_ratio's), the whole machine's busy CPU seconds during each (/proc/stat: "
                "the portal's PostgreSQL and anything else running count there)",
                "portal_phases_median_seconds": {
                    key: stats.rounded(stats.median([p[key] for p in phases]))
                    for key in (phases[0] if phases else {})
                },
            }
        },
    }


def _with_machine(run):
    """What ``run()`` returns, and the CPU seconds the whole machine was busy meanwhile."""
    before = machine_busy()
    result = run()
    return result, machine_busy() - before


def _phases(job, total: float) -> dict:
    """Where a portal job's wall time went (server timestamps)."""
    created = job.created_at.timestamp()
    return {
        "request_to_created": total - (job.finished_at.timestamp() - created),
        "created_to_started": job.started_at.timestamp() - created,
        "started_to_finished": job.finished_at.timestamp() - job.started_at.timestamp(),
    }
