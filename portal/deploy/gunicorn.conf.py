"""Production web server settings: ``gunicorn -c portal/deploy/gunicorn.conf.py portal.wsgi``.

The bench (bench/stack.py) starts gunicorn with this same file, so its figures are what
this configuration gives. Command-line options override it (e.g. ``--bind``).
"""

import multiprocessing
import os
import sys

from portal.config import ConfigError, Env

env = Env()


def _int(var: str, default: int) -> int:
    """The settings' reader: a bad value is one line naming the variable, not a traceback."""
    try:
        return env.int(var, default=default, minimum=1)
    except ConfigError as exc:
        sys.exit(f"gunicorn: configuration error: {exc}")


# Loopback unless told otherwise: the TLS proxy in front is what faces the network.
bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
# One process per core, each with 8 threads: the threads keep the cores busy while requests
# wait on PostgreSQL/Redis (and an SSE stream, /api/jobs/{id}/stream/, holds one for as long
# as it is open), and fewer processes contend less for the cores than 2 per core with 4
# threads did (same 16 threads on 2 cores: heartbeat_ingest_rate ~1,700 -> ~1,930/s,
# heartbeat_ratio 0.70 -> 1.03 in the same conditions; launch_rate and event_lag_p95 unchanged).
workers = _int("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count()))
worker_class = "gthread"
threads = _int("WEB_THREADS", 8)
keepalive = 30
accesslog = None
