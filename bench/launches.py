"""launch_rate: jobs launched per second through ``POST /api/jobs/``.

Single launches (one job per request) on keep-alive connections, ``CLIENTS`` connections in
parallel (one thread each), against gunicorn started with the production configuration
(portal/deploy/gunicorn.conf.py: 2 processes per core x 4 threads). The jobs go to a node
whose queue no worker consumes, so the figure is the launch path itself: request, auth,
validation, the launch action's transaction, the on-commit publish to the broker, the 201
body. Each round is bounded by a count and a time; rate = launches answered 201 / round wall
time; the figure is the median over rounds. A one-connection (serial) rate is a detail.
"""

import threading
import time

from bench import stats
from bench.client import Api
from bench.stack import web_settings

CLIENTS = 4


def _round(ctx, clients: int, count: int, max_seconds: float) -> tuple[float, int, list]:
    node = ctx.fixtures.parked_node
    lock = threading.Lock()
    state = {"left": count, "done": 0, "errors": []}
    latencies: list[float] = []
    stop_at = time.monotonic() + max_seconds

    def client():
        api = Api(ctx.port, ctx.fixtures.token)
        try:
            while time.monotonic() < stop_at:
                with lock:
                    if state["left"] <= 0:
                        return
                    state["left"] -= 1
                try:
                    _, sent, returned = api.launch("one.yml", [node])
                except Exception as exc:
                    with lock:
                        state["errors"].append(repr(exc)[:200])
                    continue
                with lock:
                    state["done"] += 1
                    latencies.append((returned - sent) * 1000)
        finally:
            api.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 30)
    elapsed = time.monotonic() - started
    if state["errors"]:
        raise RuntimeError(f"{len(state['errors'])} launches failed: {state['errors'][:3]}")
    return state["done"] / elapsed, state["done"], latencies


def measure(ctx, rounds: int = 3, count: int = 400, max_seconds: float = 6.0) -> dict:
    _round(ctx, CLIENTS, 20, 10)  # warm-up: connections, imports in each web process
    rates, latencies, done = [], [], []
    for _ in range(rounds):
        if not ctx.another(len(rates), 2, max_seconds + 5, "launch rate"):
            break
        rate, n, lat = _round(ctx, CLIENTS, count, max_seconds)
        rates.append(rate)
        done.append(n)
        latencies.extend(lat)
    serial, serial_n, serial_lat = 0.0, 0, []  # a detail: only if the share allows
    if ctx.fits(max_seconds + 5):
        serial, serial_n, serial_lat = _round(ctx, 1, count // 2, max_seconds)
    return {
        "figures": {"launch_rate": (round(stats.median(rates), 1), "/s")},
        "details": {
            "launch_rate": {
                "method": f"{CLIENTS} keep-alive clients, single launches, median over rounds",
                "stack": ctx.stack,
                "rounds": len(rates),
                "round_rates": [round(r, 1) for r in rates],
                "launches_per_round": done,
                "request_ms": stats.summary(latencies),
                "serial_one_client_rate": round(serial, 1),
                "serial_launches": serial_n,
                "serial_request_ms": stats.summary(serial_lat),
                "web": web_settings(),
            }
        },
    }
