"""What the portal's event callback costs Ansible, alone: no portal, no database, no broker.

    .venv/bin/python -m bench.callback_cost [--pairs N] [--against DIR]

A developer's tool for the engine's figure (``job_overhead_ratio``, #18), not a figure of
``python -m bench``. The same ``ansible-playbook`` of ``bench/playbooks/tasks50.yml`` on 20
local hosts (forks 20) runs in pairs, alternating: **plain** (Ansible's default callback, its
output to a file, as the bench's floor) and **portal** (the job runner's callback directory
and ``PORTAL_EVENT_FIFO``, a thread draining the FIFO as the worker's reader does). Per side
it prints the median wall seconds, the CPU seconds of the whole process tree and those of
the controller process alone (the one that runs every callback: sampled from ``/proc`` until
it exits), and the portal's over plain. On 2 cores the controller is the run's bottleneck,
so its extra CPU is what the engine's wall ratio shows. Also the controller's minor page
faults: it forks once per task and host, and every page it writes afterwards is copied
first, so a callback's cost there is mostly the pages its code touches per event (the last
line; bench/README.md, "job_overhead_ratio"). ``--against DIR`` adds a third side, the
callback in DIR (another version of ``awx_display.py``, e.g. ``git show
HEAD~1:portal/jobs/callback/awx_display.py > DIR/awx_display.py``), in the same rounds.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.paths import PLAYBOOKS, ROOT
from bench.procs import cpu_seconds, minor_faults

CALLBACK_DIR = ROOT / "portal" / "jobs" / "callback"
HOSTS = 20
EVENTS = 2053  # of tasks50.yml on 20 hosts


def write_project(work: Path) -> dict[str, str]:
    """An inventory of local hosts and an ``ansible.cfg`` like the runner's; the environment."""
    hosts = "".join(f"    h{i:02d}:\n" for i in range(1, HOSTS + 1))
    (work / "hosts.yml").write_text(
        "all:\n  vars:\n    ansible_connection: local\n"
        f"    ansible_python_interpreter: {sys.executable}\n  hosts:\n{hosts}"
    )
    (work / "ansible.cfg").write_text(
        f"[defaults]\nforks = {HOSTS}\nretry_files_enabled = False\n"
        f"interpreter_python = auto_silent\nlocal_tmp = {work / 'tmp'}\n"
    )
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
        "ANSIBLE_HOME": str(work / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


def _drain(fifo: Path) -> threading.Thread:
    def read() -> None:
        with fifo.open("rb") as events:
            while events.read(1 << 16):
                pass

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def run_once(
    work: Path, env: dict[str, str], portal: bool, callback_dir: Path = CALLBACK_DIR
) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds of the tree, CPU seconds and minor faults of the controller."""
    env = dict(env)
    drain = None
    if portal:
        fifo = work / "events.fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        env |= {
            "ANSIBLE_CALLBACK_PLUGINS": str(callback_dir),
            "ANSIBLE_STDOUT_CALLBACK": "awx_display",
            "PORTAL_EVENT_FIFO": str(fifo),
        }
        drain = _drain(fifo)
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(work / "hosts.yml")]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    with (work / "output.log").open("w") as out:
        process = subprocess.Popen(
            [*argv, str(PLAYBOOKS / "tasks50.yml")], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        controller, faults = 0.0, 0
        while process.poll() is None:
            controller = cpu_seconds(process.pid) or controller
            faults = minor_faults(process.pid) or faults
            time.sleep(0.05)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"ansible-playbook rc {process.returncode}: see {work / 'output.log'}")
    if drain is not None:
        drain.join(timeout=30)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, usage.ru_utime + usage.ru_stime - cpu_before, controller, faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="rounds after one warm-up each")
    parser.add_argument("--against", type=Path, help="a directory with another awx_display.py")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs: at least 1")
    if args.against and not (args.against / "awx_display.py").is_file():
        parser.error(f"--against: no awx_display.py in {args.against}")
    sides = {"plain": None, "portal": CALLBACK_DIR}
    if args.against:
        sides["against"] = args.against.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-callback-") as name:
        work = Path(name)
        env = write_project(work)
        runs: dict[str, list[tuple[float, float, float, int]]] = {side: [] for side in sides}

        def run(side: str) -> tuple[float, float, float, int]:
            folder = sides[side]
            return run_once(work, env, folder is not None, folder or CALLBACK_DIR)

        for side in sides:  # warm-up: the page cache, the plugin files
            run(side)
        for index in range(args.pairs):
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            for side in order:
                runs[side].append(run(side))
    medians = {
        side: [statistics.median(run[part] for run in rows) for part in range(4)]
        for side, rows in runs.items()
    }
    for side, (wall, tree, controller, faults) in medians.items():
        print(
            f"{side:7s} wall {wall:.2f} s, CPU {tree:.2f} s, controller's {controller:.2f} s "
            f"and {faults:,.0f} minor faults"
        )
    wall_a, tree_a, ctl_a, _ = medians["plain"]
    for side in list(sides)[1:]:
        wall_b, tree_b, ctl_b, _ = medians[side]
        print(
            f"{side}/plain: wall {wall_b / wall_a:.3f}, tree CPU {tree_b / tree_a:.3f}; "
            f"controller CPU {ctl_b - ctl_a:+.2f} s ({args.pairs} rounds, medians)"
        )
        extra = [b[3] - a[3] for a, b in zip(runs["plain"], runs[side], strict=True)]
        print(
            f"{side}: controller minor faults {statistics.median(extra):+,.0f} over plain "
            f"({statistics.median(extra) / EVENTS:+.0f} an event; rounds {min(extra):+,} to "
            f"{max(extra):+,})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
