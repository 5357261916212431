"""The bench's WSGI application: the product's (portal/wsgi.py) with the heartbeat's floor
(bench/floor.py) answered by the same fast path as the heartbeat, so ``heartbeat_ratio``
compares like with like. Only the bench's gunicorn loads it, with ``bench.settings``."""

import re

from bench.floor import floor_answer
from portal import wsgi  # before the next import: it sets Django up
from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath

FLOOR_PATH = re.compile(r"/bench/floor/heartbeat/([0-9]{1,18})\Z")

application = HeartbeatFastPath(wsgi.application, route=FLOOR_PATH, answer=floor_answer)
