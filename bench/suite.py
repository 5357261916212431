"""One stack's figures, in a process of its own (Django is configured once per process).

``python -m bench`` starts this module for each stack with the stack's environment
(``bench.stack.stack_env``); it resets the database and broker, migrates, creates the
fixtures, starts gunicorn and the Celery workers, runs the figures asked for within its time
budget, writes them as JSON to ``--out`` and stops everything it started.
"""

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench import procs
from bench.context import Context, OutOfTime, WorkerDied

DISPATCH_CONCURRENCY = 4
# The engine's figures first, the lab, workspace and installer figures (one test host each)
# next. job_overhead_ratio last: its pairs are the longest (about 30 s) and its ratio the
# noisiest from pair to pair, and the last figure's window is all the time left, so the
# time the figures before it did not use goes to its pairs (before the installer, it
# stopped at 2 pairs in a full run that ended 70 s early).
ORDER = (
    "event_ingest_rate",
    "launch_rate",
    "event_lag_p95",
    "dispatch_latency_p95",
    "lab_assign_to_active_p50",
    "workspace_batch_speedup",
    "installer_overhead_ratio",
    "job_overhead_ratio",
    # The monitoring group (#14): not in the default run, `python -m bench --only monitoring`.
    "heartbeat_ingest_rate",  # also gives heartbeat_ratio
    "down_detection_lag_p95",
    "alert_eval_100k",  # last: its 100k nodes stay
    # The growth group (#18): not in the default run, `python -m bench --only scale`.
    "growth_metrics",  # also gives the other growth_* figures; its million jobs stay
    # The fleet (#17): not in the default run, `python -m bench --only fleet_figures_ms`.
    "fleet_figures_ms",  # its 10k VMs and 86M rollups stay
)
MONITORING = ("heartbeat_ingest_rate", "down_detection_lag_p95", "alert_eval_100k")
SCALE = ("growth_metrics",)
# Groups not in the default run (each has its own `--only <group>`).
FLEET = ("fleet_figures_ms",)
OPTIONAL = MONITORING + SCALE + FLEET
# Names asked for with --only that another entry measures, and groups.
ALIASES = {
    "heartbeat_ratio": ("heartbeat_ingest_rate",),
    "monitoring": MONITORING,
    "scale": SCALE,
    "growth_jobs_api_deep_page": SCALE,
    "growth_admin_job_list": SCALE,
    "growth_job_events": SCALE,
    # The ratios to their floors (#18) are given by the entries of their absolute figures.
    "launch_ratio": ("launch_rate",),
    "event_ingest_ratio": ("event_ingest_rate",),
    "lab_assign_ratio": ("lab_assign_to_active_p50",),
}
# About what each figure takes in a full run on a 2-core machine, seconds (the workspace
# figure's fixed part, warm-up + batch, is most of it and cannot shrink). Each figure gets
# this share of the time left and repeats only while its share lasts (Context.another): on
# a slower machine every figure is measured with fewer repetitions, none is left out.
WEIGHTS = {
    "event_ingest_rate": 20,
    # Its rounds are about a second here and move 10-15 % each: the pairs a verdict near
    # its line needs (0.84 with a 90 % interval 0.78-0.86 after 19 pairs in 35 s).
    "launch_rate": 120,
    # Far from their targets (about 200 of 500 ms, 20 of 250 ms): fewer runs change no
    # verdict, and their time goes to the engine's pairs.
    "event_lag_p95": 40,
    "dispatch_latency_p95": 40,
    # The engine's ratio moves up to 10% from pair to pair (each pair about 30 s here): as
    # many of its 16 pairs as the run allows while its verdict is not decided, in AB/BA
    # couples. Twice its weight at 720 s: the others' shares stay what they were then, and
    # the time the 900 s budget adds goes to its pairs.
    "job_overhead_ratio": 800,
    "lab_assign_to_active_p50": 70,
    # Its fixed part is most of it (MINIMUM_SECONDS reserves that): 110-190 s in a full run.
    "workspace_batch_speedup": 200,
    # Its 2 warm-ups and 4 required pairs take about 50 s; 5 pairs at least to be decided.
    "installer_overhead_ratio": 150,
    "heartbeat_ingest_rate": 60,
    "down_detection_lag_p95": 45,
    "alert_eval_100k": 40,
    "growth_metrics": 300,
    "fleet_figures_ms": 900,
}


def log(message: str) -> None:
    stack = os.environ.get("BENCH_STACK", "?")
    sys.stderr.write(f"[bench {stack} {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _measure(name: str, ctx: Context) -> dict:
    quick = ctx.quick
    if name == "event_ingest_rate":
        from bench import ingest

        return ingest.measure(ctx, runs=1 if quick else 9, minimum=1 if quick else 3)
    if name == "launch_rate":
        from bench import launches

        return launches.measure(ctx, pairs=1 if quick else 60, minimum=1 if quick else 3)
    if name == "dispatch_latency_p95":
        from bench import dispatch

        full = ctx.stack == "postgres" and not quick  # the embedded default: a comparison
        return dispatch.measure(
            ctx,
            launches=200 if full else 20,
            rounds=4 if full else 2,
            concurrency=DISPATCH_CONCURRENCY,
        )
    if name == "job_overhead_ratio":
        from bench import overhead

        # The embedded default's ratio is a comparison: one pair is enough when time is short.
        pairs = 1 if quick else (16 if ctx.stack == "postgres" else 2)
        minimum = 2 if ctx.stack == "postgres" and not quick else 1
        return overhead.measure(ctx, pairs=pairs, minimum=minimum)
    if name == "event_lag_p95":
        from bench import lag

        # --quick: one light run; the 50 x 20 runs (two figures that are no ratio) left out
        if quick:
            return lag.measure(ctx, light_runs=1, heavy_runs=0, light_minimum=1)
        return lag.measure(ctx, light_runs=3, heavy_runs=2)
    if name == "workspace_batch_speedup":
        from bench import workspaces

        return workspaces.measure(ctx, count=20 if quick else 100, singles=2 if quick else 4)
    if name == "lab_assign_to_active_p50":
        from bench import labs

        return labs.measure(ctx, pairs=1 if quick else 15, minimum=1 if quick else 5)
    if name == "installer_overhead_ratio":
        from bench import installers

        # A pair's ratio moves up to 15% (the first ones most): 4 pairs at least.
        return installers.measure(ctx, pairs=1 if quick else 10, minimum=1 if quick else 4)
    if name in MONITORING:
        from bench import monitoring

        if name == "heartbeat_ingest_rate":
            return monitoring.measure_heartbeats(ctx, rounds=2 if quick else 3)
        if name == "down_detection_lag_p95":
            return monitoring.measure_down_lag(ctx)
        return monitoring.measure_alert_eval(ctx, passes=2 if quick else 4)
    if name in SCALE:
        from bench import scale

        return scale.measure(ctx, repeats=3 if quick else scale.REPEATS)
    if name in FLEET:
        from bench import fleet

        return fleet.measure(ctx, requests=11 if quick else fleet.REQUESTS)
    raise ValueError(f"unknown figure {name}")


SETTLE_TIMEOUT = 20  # seconds a table's VACUUM may take before it is left to autovacuum


def settle_database() -> float:
    """PostgreSQL, before a figure: the tables the figures before it wrote to are vacuumed
    and analysed, and a checkpoint is taken, now rather than by autovacuum and the
    checkpointer while this figure measures (in one full run the launch floor ran 20% slower
    in the pairs right after the ingest figure's 150k event rows). Returns the seconds it took;
    a table slower than ``SETTLE_TIMEOUT`` is left to autovacuum."""
    from django.db import DatabaseError, connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) "
            "FROM pg_stat_user_tables "
            "WHERE n_ins_since_vacuum + n_dead_tup + n_mod_since_analyze > 1000"
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SET statement_timeout = '{SETTLE_TIMEOUT}s'")
        try:
            for table in tables:
                try:
                    cursor.execute(f"VACUUM (ANALYZE) {table}")
                except DatabaseError as exc:  # too slow, or locked: autovacuum's, then
                    log(f"settle: {table} left to autovacuum: {exc}".strip())
            try:
                cursor.execute("CHECKPOINT")
            except DatabaseError as exc:  # a role without pg_checkpoint: the checkpointer's
                log(f"settle: no checkpoint: {exc}".strip())
        finally:
            cursor.execute("RESET statement_timeout")
    return time.monotonic() - started


def share(left: float, name: str, remaining: list[str]) -> float:
    return left * WEIGHTS[name] / sum(WEIGHTS[figure] for figure in remaining)


# About what each figure's required repetitions (and its warm-up, test host, fixed part)
# take on a 2-core machine, seconds: reserved for the figures still to run, so a figure's
# further repetitions never take the time another figure needs for its minimum.
MINIMUM_SECONDS = {
    "event_ingest_rate": 15,
    "launch_rate": 25,
    "event_lag_p95": 40,
    "dispatch_latency_p95": 15,
    "job_overhead_ratio": 60,
    "lab_assign_to_active_p50": 40,
    "workspace_batch_speedup": 180,
    "installer_overhead_ratio": 80,  # its 4 pairs and two warm-ups
}


def window(left: float, name: str, remaining: list[str]) -> float:
    """Seconds the figure ``remaining[0] == name`` may use for repetitions past its minimum:
    its share of the time left, but never the time the figures after it need for their
    minimum (every figure gets its minimum repetitions first, what is left goes to more)."""
    reserved = sum(MINIMUM_SECONDS.get(figure, 0) for figure in remaining[1:])
    return max(0.0, min(share(left, name, remaining), left - reserved))


def setup(figures: list[str], budget_end: float, quick: bool) -> Context:
    import django
    from django.core.management import call_command

    from bench import stack

    env = dict(os.environ)
    work = Path(env["BENCH_WORK"])
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack.reset_backends(env)
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    fixtures = stack.create_fixtures()
    if set(SCALE) & set(figures):  # the admin pages it times need the manifest's static files
        call_command("collectstatic", verbosity=0, interactive=False)
    from django.db import connection

    connection.close()  # the services fork nothing from us, but keep the bench's use fresh

    services = {}
    # The floors are bench-only (bench/wsgi.py, bench/settings.py, bench/urls.py).
    bench_urls = "heartbeat_ingest_rate" in figures or "fleet_figures_ms" in figures
    bench_urls = bench_urls or "launch_rate" in figures  # launch_ratio's floor
    web, port = (
        stack.start_web(env, log_dir, "bench.settings", "bench.wsgi")
        if bench_urls
        else stack.start_web(env, log_dir)
    )
    services["web"] = web
    services["worker"] = stack.start_worker(env, log_dir, "worker", fixtures.default_queue, 1)
    if "dispatch_latency_p95" in figures:
        services["dispatch-worker"] = stack.start_worker(
            env, log_dir, "dispatch-worker", fixtures.dispatch_queue, DISPATCH_CONCURRENCY
        )
    stack.wait_web(web, port)
    for name, service in services.items():
        if name != "web":
            stack.wait_worker(service)
    return Context(
        stack=env["BENCH_STACK"],
        env=env,
        work=work,
        fixtures=fixtures,
        port=port,
        deadline=budget_end,
        services=services,
        quick=quick,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suite")
    parser.add_argument("--figures", default=",".join(ORDER))
    parser.add_argument("--budget", type=float, required=True, help="seconds for everything")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    budget_end = time.monotonic() + args.budget
    procs.install_cleanup()
    procs.die_with_parent()
    wanted = [name for name in ORDER if name in args.figures.split(",")]
    suffix = "" if os.environ["BENCH_STACK"] == "postgres" else f"_{os.environ['BENCH_STACK']}"
    result = {"figures": {}, "details": {}, "errors": {}, "seconds": {}}
    started = time.monotonic()
    ctx = None
    try:
        log(f"setting up ({', '.join(wanted)})")
        ctx = setup(wanted, budget_end - 15, args.quick)
        result["seconds"]["setup"] = round(time.monotonic() - started, 1)
        for index, name in enumerate(wanted):
            if ctx.stack == "postgres":
                result["seconds"][f"settle:{name}"] = round(settle_database(), 1)
            begun = time.monotonic()
            ctx.figure_end = begun + window(ctx.left(), name, wanted[index:])
            log(f"{name} ... ({ctx.figure_end - begun:.0f}s share)")
            try:
                try:
                    measured = _measure(name, ctx)
                except WorkerDied as exc:
                    # Once per figure: replace the dead worker, measure the figure again.
                    log(f"{name}: {exc}; restarting the worker and measuring again")
                    ctx.restart_dead_workers(f"{name}: {exc}")
                    measured = _measure(name, ctx)
            except OutOfTime as exc:
                result["errors"][name + suffix] = f"out of time: {exc}"
                log(f"{name}: out of time: {exc}")
                continue
            except Exception as exc:
                result["errors"][name + suffix] = f"{type(exc).__name__}: {exc}"[:2000]
                log(f"{name} failed:\n{traceback.format_exc()}")
                continue
            finally:
                result["seconds"][name + suffix] = round(time.monotonic() - begun, 1)
            for key, value in measured["figures"].items():
                result["figures"][key + suffix] = value
                log(f"  {key + suffix} {value[0]} {value[1]}")
            for key, value in measured["details"].items():
                result["details"][key + suffix] = value
    except Exception as exc:
        result["errors"]["setup" + suffix] = f"{type(exc).__name__}: {exc}"[:3000]
        log(f"setup failed:\n{traceback.format_exc()}")
    finally:
        procs.stop_all()
        if ctx is not None:
            result["incidents"] = ctx.incidents
        args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
