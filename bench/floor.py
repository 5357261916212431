"""The heartbeat's floor: a minimal handler doing the same two writes as the heartbeat.

``PUT /bench/floor/heartbeat/{id}`` parses the JSON body and does one UPDATE of the node's
liveness row and one INSERT of a sample, with no authentication, no validation and no
sequence check: what any handler storing a heartbeat must at least do in the same gunicorn,
the same dispatch and the same database. It writes them as the heartbeat does
(portal/monitoring/heartbeat.py), so the ratio prices the heartbeat's checks and not a way
of writing: on PostgreSQL one statement (``WITH … UPDATE … RETURNING`` + ``INSERT``),
prepared, in the same commit mode (``MONITORING_HEARTBEAT_SYNC_COMMIT``); elsewhere two
statements in one transaction. The product's heartbeat is answered by the WSGI fast path in
front of Django (portal/monitoring/heartbeat_wsgi.py), so the floor is served by that same
fast path (bench/wsgi.py: ``floor_answer`` in place of the heartbeat's ``answer``); the
Django view below is the same floor behind Django's middleware, reached only when the fast
path stands aside. ``heartbeat_ratio`` is the real heartbeat's rate over the floor's.
"""

import json

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

UPDATE = (
    "UPDATE monitoring_nodeliveness SET last_seen_at = %(at)s, last_seq = %(seq)s "
    "WHERE node_id = %(node)s"
)
COLUMNS = "node_id, at, cpu_percent, memory_percent, disk_percent, disk_used_gb"
VALUES = "%(node)s, %(at)s, %(cpu_percent)s, %(memory_percent)s, %(disk_percent)s, %(disk_used_gb)s"
INSERT = f"INSERT INTO monitoring_sample ({COLUMNS}) "
# S608: every part is a constant of this module.
BOTH = {
    True: f"WITH beat AS ({UPDATE} RETURNING node_id) {INSERT}SELECT {VALUES} FROM beat",  # noqa: S608
    False: f"WITH beat AS ({UPDATE} RETURNING node_id), "  # noqa: S608
    "no_flush_wait AS (SELECT set_config('synchronous_commit', 'off', true)) "
    f"{INSERT}SELECT {VALUES} FROM beat, no_flush_wait",
}  # by MONITORING_HEARTBEAT_SYNC_COMMIT


def floor_answer(method, authorization, content_length, body, node_id):
    """(status, JSON body, headers) like ``portal.monitoring.heartbeat.answer``."""
    # Imported here: bench/wsgi.py imports this module before portal.wsgi sets Django up.
    from portal.core.db import execute_prepared

    values = json.loads(body)
    db = connections[DEFAULT_DB_ALIAS]
    params = {
        "node": int(node_id),
        "at": db.ops.adapt_datetimefield_value(timezone.now()),
        "seq": values["seq"],
        **{name: values[name] for name in COLUMNS.split(", ")[2:]},
    }
    if db.vendor == "postgresql":
        stored = execute_prepared(db, BOTH[settings.MONITORING_HEARTBEAT_SYNC_COMMIT], params)
    else:
        with transaction.atomic(), db.cursor() as cursor:
            cursor.execute(UPDATE, params)
            stored = cursor.rowcount
            if stored == 1:
                cursor.execute(f"{INSERT}VALUES ({VALUES})", params)
    if stored != 1:
        return 404, {"status": 404}, {}
    return 200, {"seq": values["seq"]}, {}


@csrf_exempt
def heartbeat_floor_view(request, node_id: int):
    status, body, headers = floor_answer(request.method, "", None, request.body, node_id)
    return JsonResponse(body, status=status, headers=headers)
