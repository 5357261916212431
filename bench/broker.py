"""The broker's own round trip: the floor in the details of dispatch_latency_p95 and
event_lag_p95.

A no-op message published to a queue of its own on the portal's broker (the Celery app's
connection: the same URL and transport options the launch publishes with) and consumed
from it, one at a time: what any dispatch through this broker costs at least.
"""

import time
import uuid

from bench import stats


def round_trip(messages: int = 50, timeout: float = 10.0) -> dict:
    """Publish -> consume of ``messages`` no-op messages, each after the last was consumed;
    the summary of the times (ms) and the method. Never raises: a broker that fails here is
    said in the details, the figure is still the figure."""
    from portal.celery import app

    times: list[float] = []
    try:
        with app.connection_for_write() as conn:
            queue = conn.SimpleQueue(f"bench-rtt-{uuid.uuid4().hex[:8]}")
            try:
                for index in range(messages):
                    sent = time.perf_counter()
                    queue.put({"noop": index})
                    message = queue.get(block=True, timeout=timeout)
                    times.append((time.perf_counter() - sent) * 1000)
                    message.ack()
            finally:
                queue.queue.delete()
                queue.close()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300], "ms": stats.summary(times)}
    return {
        "method": "publish -> consume of a no-op message on the same broker, one at a time",
        "ms": stats.summary(times),
    }
