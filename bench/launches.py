"""launch_ratio: jobs launched per second through ``POST /api/jobs/`` over its floor's rate.

Single launches (one job per request) on keep-alive connections, ``CLIENTS`` connections in
parallel (one thread each), against gunicorn started with the production configuration
(portal/deploy/gunicorn.conf.py: one process per core x 8 threads), spread evenly over its
processes and the same for both rounds of a pair (``connections``). The jobs go to a node
whose queue no worker consumes, so the figure is the launch path itself: request, auth,
validation, the launch action's transaction, the on-commit publish to the broker, the 201
body. The floor (bench/floor_launch.py) is ``POST /bench/floor/launch`` in the same gunicorn
with the same token: one INSERT and one publish to the same queue. Rounds alternate (portal
floor, floor portal, ...), each bounded by a count and a time; rate = launches answered 201
/ round wall time; the figure is the median of the per-pair ratios portal / floor. The
absolute rates (``launch_rate``: the portal's median) and a one-connection (serial) rate of
the portal are details.
"""

import resource
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import stats
from bench.client import Api, ApiError
from bench.procs import cpu_seconds, descendants, pids_named
from bench.stack import web_processes, web_settings, web_threads

CLIENTS = 4
FLOOR_PATH = "/bench/floor/launch"
PROCESS_PATH = "/bench/process"


def _portal_launch(ctx):
    node = ctx.fixtures.parked_node

    def send(api: Api) -> None:
        api.launch("one.yml", [node])

    return send


def _floor_launch(ctx):
    body = {"playbook": "one.yml", "queue": ctx.fixtures.parked_queue}

    def send(api: Api) -> None:
        status, answer = api.request("POST", FLOOR_PATH, body)
        if status != 201:
            raise ApiError(f"floor launch -> {status}: {answer}")

    return send


def connections(ctx, clients: int) -> list[Api]:
    """``clients`` keep-alive connections, spread evenly over the web processes.

    Which of gunicorn's processes accepts a connection is chance, and where 3 or 4 of the
    4 clients share a process, their requests share one core: with connections of their
    own in each round, that chance moved a pair's ratio more than the code did (rates of
    130-280 /s within one run). So connections are opened, asked which process serves them
    (``GET /bench/process``, bench-only) and kept only while their process has no more
    than its share; both rounds of a pair use the same ones."""
    processes = web_processes()
    share = -(-clients // processes)  # ceil
    kept: list[Api] = []
    per_process: Counter[int] = Counter()
    for _ in range(20 * clients):  # chance, bounded: a few tries more than clients, usually
        api = Api(ctx.port, ctx.fixtures.token)
        status, body = api.request("GET", PROCESS_PATH)
        if status != 200:
            api.close()
            raise ApiError(f"{PROCESS_PATH} -> {status}: {body}")
        if per_process[body["pid"]] < share:
            per_process[body["pid"]] += 1
            kept.append(api)
            if len(kept) == clients:
                return kept
        else:
            api.close()
    for api in kept:
        api.close()
    raise RuntimeError(f"could not spread {clients} connections over {processes} processes")


def _round(ctx, send, apis: list[Api], count: int, max_seconds: float) -> tuple[float, int, list]:
    lock = threading.Lock()
    state: dict[str, Any] = {"left": count, "done": 0, "errors": []}
    latencies: list[float] = []
    stop_at = time.monotonic() + max_seconds

    def client(api: Api):
        while time.monotonic() < stop_at:
            with lock:
                if state["left"] <= 0:
                    return
                state["left"] -= 1
            sent = time.perf_counter()
            try:
                send(api)
            except Exception as exc:
                with lock:
                    state["errors"].append(repr(exc)[:200])
                continue
            returned = time.perf_counter()
            with lock:
                state["done"] += 1
                latencies.append((returned - sent) * 1000)

    threads = [threading.Thread(target=client, args=(api,), daemon=True) for api in apis]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 30)
    elapsed = time.monotonic() - started
    if state["errors"]:
        raise RuntimeError(f"{len(state['errors'])} launches failed: {state['errors'][:3]}")
    return state["done"] / elapsed, state["done"], latencies


class CpuSplit:
    """Where a round's CPU went, by part of the stack: the web server (gunicorn and its
    workers), PostgreSQL (every postgres process), Redis and the bench's own clients."""

    def __init__(self, web_pid: int):
        self.web_pid = web_pid

    def sample(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "web": sum(map(cpu_seconds, [self.web_pid, *descendants(self.web_pid)])),
            "postgres": sum(map(cpu_seconds, pids_named("postgres"))),
            "redis": sum(map(cpu_seconds, pids_named("redis-server"))),
            "client": usage.ru_utime + usage.ru_stime,
        }

    @staticmethod
    def per_launch_ms(before: dict, after: dict, launches: int) -> dict[str, float]:
        return {part: 1000 * (after[part] - before[part]) / max(launches, 1) for part in before}


@contextmanager
def closing_all(apis: list[Api]) -> Iterator[list[Api]]:
    try:
        yield apis
    finally:
        for api in apis:
            api.close()


def pair_order(index: int) -> tuple[str, str]:
    """Pairs alternate their order so drift on the machine hits both sides alike."""
    return ("portal", "floor") if index % 2 == 0 else ("floor", "portal")


def measure(
    ctx, pairs: int = 60, minimum: int = 3, count: int = 200, max_seconds: float = 3.0
) -> dict:
    sides = {"portal": _portal_launch(ctx), "floor": _floor_launch(ctx)}
    # Warm-up: every thread of every web process serves both sides before a round counts.
    # Each thread has its own database connection, prepared statements and serializers, and
    # the portal's side has more of them: with the rounds' 4 clients only, the first pairs
    # met cold threads (0.58 and 0.75 against a median of 0.82 in a full run).
    warm_clients = 2 * web_threads()
    for send in sides.values():
        with closing_all(connections(ctx, warm_clients)) as apis:
            _round(ctx, send, apis, 10 * warm_clients, 10)
    rates: dict[str, list[float]] = {"portal": [], "floor": []}
    latencies: dict[str, list[float]] = {"portal": [], "floor": []}
    done: list[int] = []
    ratios: list[float] = []
    split = CpuSplit(ctx.services["web"].pid)
    cpu: dict[str, list[dict]] = {"portal": [], "floor": []}
    pair_seconds = 2 * max_seconds + 5  # at most, until one pair says what they take here
    for index in range(pairs):
        if ctx.decided("launch_ratio", ratios, minimum):
            break
        if not ctx.another(len(ratios), minimum, 1.3 * pair_seconds, "launch ratio"):
            break
        started = time.monotonic()
        with closing_all(connections(ctx, CLIENTS)) as apis:
            for side in pair_order(index):
                before = split.sample()
                rate, n, lat = _round(ctx, sides[side], apis, count, max_seconds)
                cpu[side].append(split.per_launch_ms(before, split.sample(), n))
                rates[side].append(rate)
                latencies[side].extend(lat)
                if side == "portal":
                    done.append(n)
        ratios.append(rates["portal"][-1] / rates["floor"][-1])
        pair_seconds = time.monotonic() - started
    serial, serial_n, serial_lat = 0.0, 0, list[float]()  # a detail: only if the share allows
    if ctx.fits(max_seconds + 5):
        with closing_all(connections(ctx, 1)) as apis:
            serial, serial_n, serial_lat = _round(
                ctx, sides["portal"], apis, count // 2, max_seconds
            )
    return {
        "figures": {"launch_ratio": (round(stats.median(ratios), 3), "x")},
        "details": {
            "launch_ratio": {
                "method": f"{CLIENTS} keep-alive clients, single launches, connections "
                "spread evenly over the web processes and the same for both rounds of a pair; "
                "rounds alternate portal (POST /api/jobs/) and floor (POST /bench/floor/launch: "
                "same gunicorn, same token auth, one INSERT + one publish); median of per-pair "
                "rate ratios",
                "stack": ctx.stack,
                "pairs": len(ratios),
                "ratios": [round(r, 3) for r in ratios],
                **ctx.verdict_spread("launch_ratio", ratios),
                "launch_rate": round(stats.median(rates["portal"]), 1),
                "floor_rate": round(stats.median(rates["floor"]), 1),
                "round_rates": {side: [round(r, 1) for r in rates[side]] for side in rates},
                "launches_per_round": done,
                "request_ms": stats.summary(latencies["portal"]),
                "floor_request_ms": stats.summary(latencies["floor"]),
                "cpu_ms_per_launch": {
                    side: {
                        part: stats.rounded(stats.median([r[part] for r in rounds]))
                        for part in (rounds[0] if rounds else {})
                    }
                    for side, rounds in cpu.items()
                },
                "serial_one_client_rate": round(serial, 1),
                "serial_launches": serial_n,
                "serial_request_ms": stats.summary(serial_lat),
                "web": web_settings(),
            }
        },
    }
